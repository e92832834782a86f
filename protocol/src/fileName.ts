/**
 * The name a delivered file is saved under, for the widget's download link and the wallet's
 * receipts alike: the shop's `filename` if it gave one, else the product id plus the type's
 * extension. Only safe characters; never a path.
 */
const EXTENSIONS: Record<string, string> = {
  'application/pdf': '.pdf',
  'application/epub+zip': '.epub',
  'application/zip': '.zip',
  'application/json': '.json',
  'application/octet-stream': '.bin',
  'audio/mpeg': '.mp3',
  'audio/ogg': '.ogg',
  'image/png': '.png',
  'image/jpeg': '.jpg',
  'image/gif': '.gif',
  'image/webp': '.webp',
  'image/svg+xml': '.svg',
  'video/mp4': '.mp4',
  'text/csv': '.csv',
  'text/markdown': '.md',
  'text/plain': '.txt',
  'text/html': '.html',
};

/** `type`: the media type without parameters ("text/markdown", not "text/markdown; charset=utf-8"). */
export function fileNameFor(productId: string, type: string, wanted?: string | null): string {
  const clean = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(0, 120);
  const given = wanted ? clean(wanted) : '';
  if (given) return given;
  const base = clean(productId) || 'download';
  const ext = EXTENSIONS[type] ?? '';
  return base.endsWith(ext) ? base : base + ext;
}
