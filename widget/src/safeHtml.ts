import { type ComponentChildren, h } from 'preact';

/**
 * Delivered `text/html` shown without ever handing merchant markup to the live page: the text is
 * parsed in an inert document (DOMParser runs no scripts and loads nothing), then rebuilt as new
 * elements from a short list of text-structure tags with no attributes at all, except an http(s)
 * or mailto `href` on links. Everything else is reduced to its text; scripts, styles, embeds,
 * forms and media are dropped. No innerHTML, so no event handler or URL the merchant wrote runs.
 */
const KEEP = new Set(
  'p h1 h2 h3 h4 h5 h6 em strong b i u s small sub sup mark abbr cite q time blockquote pre code ul ol li dl dt dd br hr figure figcaption table thead tbody tfoot tr th td caption a section article header footer aside div span'.split(
    ' ',
  ),
);
const DROP = new Set(
  'script style template noscript iframe frame frameset object embed applet svg math form input button select textarea option link meta base head title img picture source video audio track canvas map area dialog slot portal'.split(
    ' ',
  ),
);
const MAX_DEPTH = 48;

export type HtmlParser = (html: string) => Document;
const domParser: HtmlParser = (html) => new DOMParser().parseFromString(html, 'text/html');

export function htmlToChildren(html: string, parse: HtmlParser = domParser, base?: string): ComponentChildren {
  let doc: Document;
  try {
    doc = parse(html);
  } catch {
    // e.g. a page that enforces Trusted Types refuses DOMParser on a plain string: show the source as text.
    return html;
  }
  return convert(doc.body?.childNodes ?? [], 0, base);
}

function convert(nodes: ArrayLike<Node>, depth: number, base?: string): ComponentChildren[] {
  const out: ComponentChildren[] = [];
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i] as Node;
    if (node.nodeType === 3) {
      out.push((node as Text).data);
      continue;
    }
    if (node.nodeType !== 1) continue; // comments, processing instructions
    const tag = (node as Element).localName;
    if (DROP.has(tag)) continue;
    const kids = depth < MAX_DEPTH ? convert(node.childNodes, depth + 1, base) : [node.textContent ?? ''];
    if (!KEEP.has(tag)) {
      out.push(...kids);
    } else if (tag === 'a') {
      const href = safeHref((node as Element).getAttribute('href'), base);
      out.push(href ? h('a', { href, rel: 'noopener noreferrer nofollow', target: '_blank' }, ...kids) : h('span', null, ...kids));
    } else {
      out.push(h(tag, null, ...kids));
    }
  }
  return out;
}

export function safeHref(href: string | null, base?: string): string | null {
  if (!href) return null;
  try {
    const u = new URL(href, base ?? globalThis.location?.href);
    return u.protocol === 'https:' || u.protocol === 'http:' || u.protocol === 'mailto:' ? u.href : null;
  } catch {
    return null;
  }
}
