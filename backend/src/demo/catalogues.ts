import { memoryCatalogue, type Product } from '../merchant/catalogue.ts';

/** The demo shops' wares: real content, sold at real (tiny) prices. */
const text = (s: string) => new TextEncoder().encode(s);

const articles: Array<[string, string, string]> = [
  ['why-micropayments', 'Why micropayments failed, and why they need not', 'The web never got a way to pay three cents. Card fees start at thirty. Obol opens one deposit and lets a hundred purchases happen inside it, so the cost of a payment is paid once, not a hundred times.'],
  ['two-banks', 'Two banks, one click', 'A shopper in Stockholm reads a Paris newspaper. Her bank reserves twenty crowns; the paper’s bank is told a deposit is there; she reads, clicks, reads. At the end the banks clear once, and neither learns which articles she read.'],
  ['fair-exchange', 'The fair exchange of digital goods', 'How can you pay for a file before you see it? The merchant signs the encrypted file and its description; you sign that you received it; only then does the key arrive. Each side holds proof the other cannot forge.'],
  ['pseudonyms', 'Pseudonyms at the till', 'The merchant sees a session key and a pseudonym, never a name. The operators see amounts and a salted hash, never a shopping list.'],
  ['deposits', 'The deposit is the trick', 'Authentication, conversion and settlement happen once per deposit. Inside it, a purchase is a signature and a reply.'],
];

export function newsCatalogue(currency = 'EUR'): ReturnType<typeof memoryCatalogue> {
  const products: Product[] = articles.map(([id, title, body]) => ({
    productId: id,
    title,
    description: `Article: ${title}`,
    price: `${currency}:0.03`,
    contentType: 'text/plain; charset=utf-8',
    content: text(`${title}\n\n${body}\n`),
  }));
  return memoryCatalogue(products);
}
