/**
 * The widget's CSS, given to each shadow root as one shared constructable stylesheet
 * (`adoptedStyleSheets`): a strict CSP (`style-src 'self'`) allows it, unlike a `<style>` element
 * or a `style` attribute. Shops restyle through custom properties and `::part(…)`.
 */
import CSS from './widget.css?inline';

export { CSS };

let shared: CSSStyleSheet | null | undefined;

export function adoptStyles(root: ShadowRoot): void {
  if (shared === undefined) {
    try {
      shared = new CSSStyleSheet();
      shared.replaceSync(CSS);
    } catch {
      shared = null;
    }
  }
  if (shared && 'adoptedStyleSheets' in root) {
    root.adoptedStyleSheets = [shared];
  } else {
    // Browsers without constructable stylesheets (before 2023): a <style> element, which a strict
    // CSP blocks; the widget then works unstyled. README.md says so.
    const style = root.ownerDocument.createElement('style');
    style.textContent = CSS;
    root.prepend(style);
  }
}

/** An open shadow root with the styles and a mount point for Preact (which owns only that node). */
const mounts = new WeakMap<HTMLElement, HTMLElement>();

export function shadowMount(host: HTMLElement): HTMLElement {
  let mount = mounts.get(host);
  if (!mount) {
    const root = host.shadowRoot ?? host.attachShadow({ mode: 'open' });
    adoptStyles(root);
    mount = root.ownerDocument.createElement('div');
    mount.className = 'mount';
    root.append(mount);
    mounts.set(host, mount);
  }
  return mount;
}
