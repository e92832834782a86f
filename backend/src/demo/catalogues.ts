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

/** A skyline drawn in SVG: a small real image file. */
function skylineSvg(): string {
  const towers = Array.from({ length: 14 }, (_, i) => {
    const h = 60 + ((i * 37) % 110);
    return `<rect x="${20 + i * 40}" y="${240 - h}" width="32" height="${h}" fill="#${(0x334455 + i * 0x050505).toString(16)}"/>`;
  }).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="600" height="260" viewBox="0 0 600 260"><rect width="600" height="260" fill="#f4d9a8"/><circle cx="480" cy="70" r="36" fill="#f08a4b"/>${towers}</svg>\n`;
}

/** A small data set: the demo operators' exchange rates through a year, one row per month. */
function ratesCsv(): string {
  const rows = ['month,SEK_per_EUR,EUR_per_SEK'];
  for (let m = 1; m <= 12; m++) {
    const sekPerEur = (11.2 + ((m * 7) % 9) / 20).toFixed(2);
    rows.push(`2026-${String(m).padStart(2, '0')},${sekPerEur},${(1 / Number(sekPerEur)).toFixed(4)}`);
  }
  return `${rows.join('\n')}\n`;
}

/**
 * The downloads shop: digital goods (an image, a data set, a booklet) sold through secure delivery
 * (FIG 4) like the articles: encrypted once, signed once, the key released only after the
 * shopper's signed accept.
 */
export function downloadsCatalogue(currency = 'EUR'): ReturnType<typeof memoryCatalogue> {
  return memoryCatalogue([
    {
      productId: 'city-skyline.svg',
      title: 'City skyline at dusk',
      description: 'A vector drawing, 600×260, SVG',
      price: `${currency}:0.40`,
      contentType: 'image/svg+xml',
      content: text(skylineSvg()),
    },
    {
      productId: 'rates-2026.csv',
      title: 'Exchange rates 2026',
      description: 'SEK/EUR month by month, CSV with a header row',
      price: `${currency}:0.15`,
      contentType: 'text/csv; charset=utf-8',
      content: text(ratesCsv()),
    },
    {
      productId: 'fair-exchange-booklet.md',
      title: 'The fair exchange, a booklet',
      description: 'How a shopper pays for a file she has not opened yet, and why neither side can cheat (Markdown)',
      price: `${currency}:0.25`,
      contentType: 'text/markdown; charset=utf-8',
      content: text(
        [
          '# The fair exchange',
          '',
          '1. The merchant encrypts the file once with its own key K2 and signs the encrypted file and its description.',
          '2. Your wallet checks both signatures and that the encrypted file is the one described, then signs that it accepts it: now you pay.',
          '3. The merchant sends K2 wrapped with K1, a key your wallet made and your bank relayed. Your wallet opens the file and checks it is what was described.',
          '4. If it is not, your receipt is the evidence: an arbiter gets K1 from the bank and sees for itself.',
          '',
        ].join('\n'),
      ),
    },
  ]);
}
