// './x509.ts' first: it loads the Reflect metadata polyfill @peculiar/x509 needs (see there).
import { AuthorityKeyIdentifierExtension, KeyUsageFlags, KeyUsagesExtension, SubjectAlternativeNameExtension, SubjectKeyIdentifierExtension, X509CertificateGenerator } from './x509.ts';
import { BasicConstraintsExtension, ExtendedKeyUsage, ExtendedKeyUsageExtension, Name } from '@peculiar/x509';
import { ObolError } from '../errors.ts';
import { type WebCrypto, defaultCrypto } from '../webcrypto.ts';
import { type Cert, describeCert, signedBy } from './cert.ts';
import { type CertIssuer, type SubjectKey, type ValidityInput, randomSerial, spkiOf } from './issue.ts';

/**
 * A TLS server certificate for one of an operator's servers (its own, a merchant module's shop,
 * an arbiter), issued by the operator's key: clients trust the operator's chain (operator
 * certificate + interbank root) and nothing else. It is not an Obol protocol certificate: it has
 * no kind policy, so `verifyChain` refuses it for any message (a TLS key signs no payment), and
 * the extended key usage `serverAuth` keeps TLS stacks from taking it for anything but a server.
 *
 * Names: DNS names and IP addresses (IPv4 dotted, IPv6 with colons), as subjectAltName; the first
 * is also the subject CN for tools that show one. Validity is bounded by the operator's.
 */
export const MAX_TLS_NAMES = 32;

export async function issueTlsServerCert(
  params: { names: readonly string[]; publicKey: SubjectKey; issuer: CertIssuer } & ValidityInput,
  crypto: WebCrypto = defaultCrypto(),
): Promise<Cert> {
  const names = checkNames(params.names);
  if (describeCert(params.issuer.cert).kind !== 'operator') {
    throw new ObolError('CERT_WRONG_KIND', 'a TLS server certificate is issued by an operator');
  }
  const spki = await spkiOf(params.publicKey, crypto);
  const notBefore = Math.max(params.notBefore, params.issuer.cert.notBefore.getTime());
  const notAfter = Math.min(params.notAfter, params.issuer.cert.notAfter.getTime());
  if (!(Number.isFinite(notBefore) && Number.isFinite(notAfter) && notBefore < notAfter)) {
    throw new ObolError('MALFORMED', 'certificate validity is empty: notBefore must come before notAfter, inside the issuer’s validity');
  }
  const issuerSki = params.issuer.cert.getExtension(SubjectKeyIdentifierExtension);
  const cert = await X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(crypto),
      subject: new Name([{ CN: [{ utf8String: names[0]! }] }]),
      issuer: params.issuer.cert.subjectName,
      notBefore: new Date(notBefore),
      notAfter: new Date(notAfter),
      publicKey: spki,
      signingKey: params.issuer.privateKey,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
      extensions: [
        new BasicConstraintsExtension(false, undefined, true),
        new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
        new ExtendedKeyUsageExtension([ExtendedKeyUsage.serverAuth], false),
        new SubjectAlternativeNameExtension(
          names.map((value) => ({ type: isIp(value) ? ('ip' as const) : ('dns' as const), value })),
          false,
        ),
        issuerSki
          ? new AuthorityKeyIdentifierExtension(issuerSki.keyId, false)
          : await AuthorityKeyIdentifierExtension.create(params.issuer.cert.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  if (!(await signedBy(cert, params.issuer.cert.publicKey, crypto))) {
    throw new ObolError('INTERNAL', 'the issuer’s private key does not match its certificate');
  }
  return cert;
}

const DNS_NAME = /^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const IPV4 = /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function isIp(name: string): boolean {
  return IPV4.test(name) || name.includes(':');
}

function checkNames(names: readonly string[]): string[] {
  if (names.length === 0 || names.length > MAX_TLS_NAMES) {
    throw new ObolError('MALFORMED', `a TLS certificate names 1 to ${MAX_TLS_NAMES} hosts`);
  }
  return names.map((raw) => {
    const name = raw.toLowerCase();
    if (IPV4.test(name) || DNS_NAME.test(name)) return name;
    // IPv6: let the URL parser say whether it is one.
    if (name.includes(':') && name.length <= 45) {
      try {
        if (new URL(`http://[${name}]/`).hostname) return name;
      } catch {
        // falls through to the refusal
      }
    }
    throw new ObolError('MALFORMED', `not a DNS name or an IP address: ${JSON.stringify(raw).slice(0, 80)}`);
  });
}

