import { render } from 'preact';
import { type Delivery, fileNameFor, parseContentType } from './content.ts';
import { htmlToChildren } from './safeHtml.ts';
import { shadowMount } from './styles.ts';

export interface PaywallViewProps {
  delivery: Delivery | null;
  /** Set when the delivery is offered as a file: its blob: URL and the name it is saved under. */
  file: { url: string; name: string } | null;
}

/** Locked: the light-DOM placeholder (the slot). Unlocked: the content, as text or a download link. */
export function PaywallView({ delivery, file }: PaywallViewProps) {
  if (!delivery) return <slot />;
  if (file) {
    return (
      <p class="file" part="content">
        <a class="download" part="download" href={file.url} download={file.name} type={delivery.contentType}>
          Download {file.name}
        </a>
      </p>
    );
  }
  return (
    <section class="content" part="content" aria-label="Purchased content">
      {delivery.kind === 'text' && delivery.html ? htmlToChildren(delivery.text) : <div class="plain">{delivery.kind === 'text' && delivery.text}</div>}
    </section>
  );
}

/**
 * `<obol-paywall id="…" product="…" [filename="…"]>` — shows its light-DOM content (a teaser,
 * "buy to read") until a matching purchase delivers, then shows what was bought instead: text
 * inline, other content (or anything, when `filename` is set) as a download link. It
 * matches a purchase by `product`, or, without one, when an `<obol-buy for="this id">` paid.
 */
export class ObolPaywall extends HTMLElement {
  static observedAttributes = ['filename'];

  #mount: HTMLElement | null = null;
  #delivery: Delivery | null = null;
  #fileUrl: string | null = null;

  connectedCallback(): void {
    this.#mount = shadowMount(this);
    this.#update();
  }

  disconnectedCallback(): void {
    this.#dropFileUrl();
  }

  attributeChangedCallback(): void {
    this.#update();
  }

  get unlocked(): boolean {
    return this.#delivery !== null;
  }

  /** Called by the widget after a purchase; returns whether this paywall took the content. */
  reveal(delivery: Delivery, targeted = false): boolean {
    const product = this.getAttribute('product');
    if (product ? product !== delivery.productId : !targeted) return false;
    this.#dropFileUrl();
    this.#delivery = delivery;
    this.setAttribute('unlocked', '');
    this.#update();
    return true;
  }

  #update(): void {
    if (!this.#mount) return;
    const d = this.#delivery;
    const wanted = this.getAttribute('filename');
    let file: PaywallViewProps['file'] = null;
    // A paywall with a `filename` offers what it reveals as a file, text included (a Markdown or
    // text document is a download there, not inline text).
    if (d && (d.kind === 'file' || wanted !== null)) {
      this.#fileUrl ??= URL.createObjectURL(new Blob([d.bytes], { type: d.contentType }));
      file = { url: this.#fileUrl, name: fileNameFor(d.productId, parseContentType(d.contentType).type, wanted) };
    }
    render(<PaywallView delivery={d} file={file} />, this.#mount);
  }

  #dropFileUrl(): void {
    if (this.#fileUrl) URL.revokeObjectURL(this.#fileUrl);
    this.#fileUrl = null;
  }
}
