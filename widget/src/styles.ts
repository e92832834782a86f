/**
 * The widget's CSS, given to each shadow root as one shared constructable stylesheet
 * (`adoptedStyleSheets`): a strict CSP (`style-src 'self'`) allows it, unlike a `<style>` element
 * or a `style` attribute. Shops restyle through custom properties and `::part(…)`.
 */
import CSS from './widget.css?inline';

let shared: CSSStyleSheet | null | undefined;

/**
 * An open shadow root with the styles and a mount point for Preact (which owns only that node).
 * The mount is the root's last child, so an element that connects again finds its own.
 */
export function shadowMount(host: HTMLElement): HTMLElement {
  const root = host.shadowRoot ?? host.attachShadow({ mode: 'open' });
  let mount = root.lastChild as HTMLElement | null;
  if (mount?.className !== 'mount') {
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
      root.append(Object.assign(document.createElement('style'), { textContent: CSS }));
    }
    mount = Object.assign(document.createElement('div'), { className: 'mount' });
    root.append(mount);
  }
  return mount;
}
