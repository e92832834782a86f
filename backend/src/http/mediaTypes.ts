import { extname } from 'node:path';

/**
 * Media types by file extension: for a product added from a file (`obol merchant add-product
 * --file`) and for the pages the standalone merchant server serves. Text types say UTF-8.
 */
const MEDIA_TYPES: Readonly<Record<string, string>> = {
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.json': 'application/json',
  '.xml': 'application/xml',
  '.pdf': 'application/pdf',
  '.zip': 'application/zip',
  '.epub': 'application/epub+zip',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.svg': 'image/svg+xml',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
  '.mp4': 'video/mp4',
};

/** The media type of a file by its extension, or undefined when the extension is not known. */
export function mediaTypeOf(fileName: string): string | undefined {
  return Object.hasOwn(MEDIA_TYPES, extname(fileName).toLowerCase()) ? MEDIA_TYPES[extname(fileName).toLowerCase()] : undefined;
}
