import { OperatorInfo, OperatorPaths } from '@obol/protocol/api';
import type { Clock } from '@obol/protocol/clock';
import { ObolError } from '@obol/protocol/errors';
import { checkSchema } from '@obol/protocol/messages';
import { type Cert, operatorMessageKey, parseCert, verifyChain } from '@obol/protocol/pki';
import type { Http } from '@obol/protocol/http';
import { undiciHttp } from '../http/client.ts';
import type { OperatorIdentity } from './identity.ts';

/**
 * Another operator as we know it: its URL, currency, certificate (checked against the root) and
 * its message key: `kid`/`key` are those of its signing certificate (issued by `cert`), never of
 * its issuing key, so a message signed with the issuing key is not recognised as the peer's.
 */
export interface Peer {
  operatorId: string;
  url: string;
  currency: string;
  cert: Cert;
  certB64: string;
  signingCertB64: string;
  kid: string;
  key: CryptoKey;
  /** The earlier of the two certificates' ends: the peer is looked up again after it. */
  notAfter: number;
}

/**
 * The operators we trade with. A peer's certificate is fetched from its `/v1/operator`, checked
 * to chain to our interbank root and to name the operator we expected, and its key imported once.
 * This operator is its own peer too (a shopper and a merchant of the same operator go through the
 * same code path).
 */
export class PeerDirectory {
  private readonly peers = new Map<string, Peer>();
  private readonly byKid = new Map<string, Peer>();
  private readonly loading = new Map<string, Promise<Peer>>();
  /**
   * Operator id → URL. A Map, not an object: ids come from requests, and `__proto__` or
   * `toString` must not find something every object has.
   */
  private readonly urls: Map<string, string>;

  constructor(
    private readonly self: OperatorIdentity,
    urls: Record<string, string>,
    private readonly clock: Clock,
    private readonly http: Http = undiciHttp,
  ) {
    this.urls = new Map(Object.entries(urls));
  }

  addPeerUrl(operatorId: string, url: string): void {
    this.urls.set(operatorId, url);
  }

  knows(operatorId: string): boolean {
    return this.urls.has(operatorId);
  }

  async get(operatorId: string): Promise<Peer> {
    const known = this.peers.get(operatorId);
    if (known && known.notAfter > this.clock.now()) return known;
    const url = this.urls.get(operatorId);
    if (!url) throw new ObolError('UNKNOWN_OPERATOR', `operator ${operatorId} is not one of our peers`);
    let pending = this.loading.get(operatorId);
    if (!pending) {
      pending = this.load(operatorId, url).finally(() => this.loading.delete(operatorId));
      this.loading.set(operatorId, pending);
    }
    return pending;
  }

  /** A peer by the key id of a message it signed (it must have been loaded). */
  async byKeyId(kid: string): Promise<Peer | undefined> {
    if (this.byKid.has(kid)) return this.byKid.get(kid);
    // Load every configured peer once, then look again.
    await Promise.allSettled([...this.urls.keys()].map((id) => this.get(id)));
    return this.byKid.get(kid);
  }

  private async load(operatorId: string, url: string): Promise<Peer> {
    const info = await this.http.get(`${url}${OperatorPaths.info}`);
    checkSchema(OperatorInfo, info, 'operator info');
    if (info.operatorId !== operatorId) {
      throw new ObolError('UNKNOWN_OPERATOR', `${url} is operator ${info.operatorId}, expected ${operatorId}`);
    }
    const cert = parseCert(info.operatorCert);
    const desc = await verifyChain(cert, { trustedRoots: [this.self.root] }, { now: this.clock.now(), expectKind: 'operator' });
    if (desc.subjectId !== operatorId) {
      throw new ObolError('CERT_UNTRUSTED', `certificate of ${url} names ${desc.subjectId}, expected ${operatorId}`);
    }
    const signing = await operatorMessageKey(info.signingCert, cert, this.clock.now());
    const peer: Peer = {
      operatorId,
      url,
      currency: info.currency,
      cert,
      certB64: info.operatorCert,
      signingCertB64: signing.certB64,
      kid: signing.kid,
      key: signing.key,
      notAfter: Math.min(desc.notAfter, signing.notAfter),
    };
    this.peers.set(operatorId, peer);
    this.byKid.set(peer.kid, peer);
    return peer;
  }
}
