// The kubernetes backend: Brindle kinds as custom resources (group brindle.dev, version v1,
// conf/crds/) over the API server's REST API with plain node:http(s). resourceVersion is the
// revision; 409 AlreadyExists/Conflict, 404 NotFound and 410 Gone map to the typed errors.
//
// Names: Kubernetes names are DNS subdomains, so a name that is not one (a block CIDR
// "10.244.0.0/26", a handle with capitals or underscores) is stored under a derived name
// ("10-244-0-0-26-<hash>") with the real name in the annotation brindle.dev/name.
//
// Node: Brindle's Node lives on the Kubernetes Node itself, as annotations (brindle.dev/*),
// with the Kubernetes Node's labels as its labels. "Creating" a Node annotates a Node the
// kubelet registered (NotFoundError when there is none); deleting removes the annotations.
//
// list() sends labelSelector to the API server, which selects (checked here first, so a
// malformed selector is a LabelSelectorError before any request); the name prefix is local.
//
// apply() is ordered: ops run one by one and the first failure stops the batch (earlier ops
// stay applied); the Kubernetes API has no multi-object transaction.
import { createHash } from 'node:crypto';
import fs = require('node:fs');
import http = require('node:http');
import { alreadyExists, checkKey, conflict, ndjsonReader, notFound, parseLabelSelector } from './common';
import { exchange, tlsError } from './http';
import { kubeTarget, type KubeTarget } from './kubeconfig';
import {
  ConflictError, DatastoreError, ExpiredError, NotFoundError, UnavailableError,
  type Datastore, type DatastoreSettings, type Kind, type ListOptions, type ListResult, type NodeSpec,
  type Resource, type Watch, type WatchEventType, type WatchHandlers, type WriteOp,
} from './types';

export const GROUP = 'brindle.dev';
export const VERSION = 'v1';
export const NAME_ANNOTATION = 'brindle.dev/name';

export const PLURALS: Record<Exclude<Kind, 'Node'>, string> = {
  IPPool: 'ippools',
  IPAMBlock: 'ipamblocks',
  BlockAffinity: 'blockaffinities',
  IPAMHandle: 'ipamhandles',
  IPAMConfig: 'ipamconfigs',
  BGPConfiguration: 'bgpconfigurations',
  BGPPeer: 'bgppeers',
};

/** Annotations on the Kubernetes Node that carry Brindle's Node. */
export const NODE_ANNOTATIONS = {
  node: 'brindle.dev/node',
  ipv4Address: 'brindle.dev/ipv4-address',
  ipv6Address: 'brindle.dev/ipv6-address',
  asNumber: 'brindle.dev/as-number',
  routeReflectorClusterID: 'brindle.dev/route-reflector-cluster-id',
  vxlanTunnelMACAddr: 'brindle.dev/vxlan-tunnel-mac',
  vxlanTunnelAddress: 'brindle.dev/vxlan-tunnel-address',
  ipv4IPIPTunnelAddr: 'brindle.dev/ipv4-ipip-tunnel-address',
} as const;

const DEFAULT_TIMEOUT_MS = 2000;
const UNCONDITIONAL_RETRIES = 5;

/** A Kubernetes API answer that maps to no other datastore error (401, 403, 422, ...). */
export class KubernetesError extends DatastoreError {
  override name = 'KubernetesError';
  constructor(message: string, readonly status: number, readonly reason: string) { super(message); }
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The Kubernetes object name for a Brindle name (itself when already a valid DNS subdomain). */
export function k8sName(name: string): string {
  if (name.length <= 253 && DNS_SUBDOMAIN.test(name)) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 10);
  const base = name.toLowerCase().replace(/[^a-z0-9.-]/g, '-').replace(/\.(?=[.-])|-(?=\.)/g, '-')
    .replace(/^[^a-z0-9]+/, '').slice(0, 200).replace(/[^a-z0-9]+$/, '');
  return base ? `${base}-${hash}` : hash;
}

interface K8sObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string; resourceVersion?: string; labels?: Record<string, string>;
    annotations?: Record<string, string>; creationTimestamp?: string; [k: string]: unknown;
  };
  spec?: unknown;
  [k: string]: unknown;
}

interface Answer { status: number; json: any }

type Https = typeof import('node:https');
type RequestOptions = import('node:https').RequestOptions;

/** HTTP/JSON client for the API server: keep-alive, deadline, bearer token or client cert. */
class ApiClient {
  private readonly url: URL;
  private readonly mod: typeof http | Https;
  readonly agent: http.Agent;
  private token: string | undefined;

  constructor(private readonly target: KubeTarget, readonly timeoutMs: number) {
    this.url = new URL(target.server);
    // node:https (and TLS) only for an https server.
    const https = this.url.protocol === 'https:' ? require('node:https') as Https : undefined;
    this.mod = https ?? http;
    this.agent = https
      ? new https.Agent({
        keepAlive: true, ca: target.ca, cert: target.cert, key: target.key,
        rejectUnauthorized: !target.insecureSkipTlsVerify,
      })
      : new http.Agent({ keepAlive: true });
    this.token = target.token;
  }

  private options(method: string, path: string, headers: http.OutgoingHttpHeaders): RequestOptions {
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    return {
      host: this.url.hostname.replace(/^\[|\]$/g, ''),
      port: this.url.port || (this.url.protocol === 'https:' ? 443 : 80),
      method, path: this.url.pathname.replace(/\/$/, '') + path, headers, agent: this.agent,
    };
  }

  async request(method: string, path: string, body?: unknown): Promise<Answer> {
    const a = await this.once(method, path, body);
    if (a.status === 401 && this.target.tokenFile) {
      // Projected service account tokens rotate: read it again and retry once.
      try { this.token = fs.readFileSync(this.target.tokenFile, 'utf8').trim(); } catch { return a; }
      return this.once(method, path, body);
    }
    return a;
  }

  private async once(method: string, path: string, body?: unknown): Promise<Answer> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(payload);
    }
    const what = `kubernetes ${method} ${path.split('?')[0]}`;
    const a = await exchange(this.mod, this.options(method, path, headers), payload, what, Date.now() + this.timeoutMs, this.timeoutMs,
      (err) => tlsError(what, this.target.server, err));
    let json: any = null;
    try { json = a.text ? JSON.parse(a.text) : null; } catch { json = { message: a.text.slice(0, 200) }; }
    return { status: a.status, json };
  }

  /** GET streaming newline-delimited JSON (watch). */
  stream(path: string, onLine: (json: any) => void, onEnd: (err?: Error) => void): { close(): void } {
    let closed = false;
    let gotResponse = false;
    const what = `kubernetes watch ${path.split('?')[0]}`;
    const opts = this.options('GET', path, { accept: 'application/json' });
    opts.agent = false;
    if (this.url.protocol === 'https:') {
      Object.assign(opts, { ca: this.target.ca, cert: this.target.cert, key: this.target.key, rejectUnauthorized: !this.target.insecureSkipTlsVerify });
    }
    const end = (err?: Error) => { if (!closed) { closed = true; clearTimeout(timer); req.destroy(); onEnd(err); } };
    const timer = setTimeout(() => { if (!gotResponse) end(new UnavailableError(`${what}: no answer within ${this.timeoutMs} ms`)); }, this.timeoutMs);
    const req = this.mod.request(opts, (res) => {
      gotResponse = true;
      clearTimeout(timer);
      let buf = '';
      res.setEncoding('utf8');
      if (res.statusCode !== 200) {
        res.on('data', (c: string) => { buf += c; });
        res.on('end', () => {
          let json: any = null;
          try { json = JSON.parse(buf); } catch { /* not a Status */ }
          end(statusError(what, res.statusCode ?? 0, json));
        });
        return;
      }
      res.on('data', ndjsonReader((json) => { if (!closed) onLine(json); },
        () => end(new UnavailableError(`${what}: bad json in stream`))));
      res.on('end', () => end());
      res.on('error', (err) => end(new UnavailableError(`${what}: ${err.message}`)));
    });
    req.on('error', (err: NodeJS.ErrnoException) => end(tlsError(what, this.target.server, err) ?? new UnavailableError(`${what}: ${err.code ?? err.message}`)));
    req.end();
    return { close: () => { if (!closed) { closed = true; clearTimeout(timer); req.destroy(); } } };
  }

  close(): void { this.agent.destroy(); }
}

/** The typed error for a non-2xx answer (a Kubernetes Status object when it is one). */
function statusError(what: string, status: number, json: any): Error {
  const reason = String(json?.reason ?? '');
  const msg = `${what}: ${String(json?.message ?? `status ${status}`)}`;
  if (status === 404 && reason === 'NotFound') return new NotFoundError(msg);
  if (status === 409 && reason === 'AlreadyExists') return new DatastoreError(msg); // callers map with the object name
  if (status === 409) return new ConflictError(msg);
  if (status === 410) return new ExpiredError(msg);
  if (status === 429 || status >= 500) return new UnavailableError(msg);
  return new KubernetesError(msg, status, reason);
}

const collection = (kind: Exclude<Kind, 'Node'>) => `/apis/${GROUP}/${VERSION}/${PLURALS[kind]}`;
const enc = encodeURIComponent;

export class KubernetesDatastore implements Datastore {
  readonly type = 'kubernetes' as const;
  private readonly api: ApiClient;
  private readonly watches = new Set<Watch>();

  constructor(settings: Pick<DatastoreSettings, 'kubeconfig' | 'kubeServiceAccountDir' | 'timeoutMs'>, target?: KubeTarget) {
    this.api = new ApiClient(target ?? kubeTarget(settings.kubeconfig, process.env, settings.kubeServiceAccountDir), settings.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  }

  async get<K extends Kind>(kind: K, name: string): Promise<Resource<K>> {
    checkKey(kind, name);
    if (kind === 'Node') return (await this.getNode(name)).res as Resource<K>;
    const a = await this.api.request('GET', `${collection(kind as Exclude<Kind, 'Node'>)}/${enc(k8sName(name))}`);
    if (a.status !== 200) throw mapError(kind, name, a);
    return fromK8s<K>(kind, a.json);
  }

  async create<K extends Kind>(res: Resource<K>): Promise<Resource<K>> {
    checkKey(res.kind, res.metadata?.name);
    if (res.kind === 'Node') return this.writeNode('create', res as Resource<'Node'>) as Promise<Resource<K>>;
    const a = await this.api.request('POST', collection(res.kind as Exclude<Kind, 'Node'>), toK8s(res, false));
    if (a.status !== 201 && a.status !== 200) throw mapError(res.kind, res.metadata.name, a);
    return fromK8s<K>(res.kind, a.json);
  }

  async update<K extends Kind>(res: Resource<K>): Promise<Resource<K>> {
    checkKey(res.kind, res.metadata?.name);
    if (res.kind === 'Node') return this.writeNode('update', res as Resource<'Node'>) as Promise<Resource<K>>;
    const path = `${collection(res.kind as Exclude<Kind, 'Node'>)}/${enc(k8sName(res.metadata.name))}`;
    for (let i = 0; ; i++) {
      let body = toK8s(res, true);
      if (res.metadata.revision === undefined) {
        // Custom resources refuse an update without resourceVersion: take the stored one.
        const cur = await this.get(res.kind, res.metadata.name);
        body = toK8s({ ...res, metadata: { ...res.metadata, revision: cur.metadata.revision } }, true);
      }
      const a = await this.api.request('PUT', path, body);
      if (a.status === 200 || a.status === 201) return fromK8s<K>(res.kind, a.json);
      const err = mapError(res.kind, res.metadata.name, a);
      if (!(err instanceof ConflictError) || res.metadata.revision !== undefined || i >= UNCONDITIONAL_RETRIES) throw err;
    }
  }

  async delete(kind: Kind, name: string, revision?: string): Promise<void> {
    checkKey(kind, name);
    if (kind === 'Node') {
      await this.writeNode('delete', { kind: 'Node', metadata: { name, revision }, spec: {} });
      return;
    }
    const body = revision === undefined ? undefined
      : { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { resourceVersion: revision } };
    const a = await this.api.request('DELETE', `${collection(kind as Exclude<Kind, 'Node'>)}/${enc(k8sName(name))}`, body);
    if (a.status !== 200 && a.status !== 202) throw mapError(kind, name, a);
  }

  async list<K extends Kind>(kind: K, opts?: ListOptions): Promise<ListResult<K>> {
    checkKey(kind, '-');
    // The API server selects by label (a malformed selector fails here, before the request);
    // the name prefix, which Kubernetes cannot select on, is filtered here.
    const sel = opts?.labelSelector?.trim() ? opts.labelSelector : undefined;
    if (sel !== undefined) parseLabelSelector(sel);
    const q = sel !== undefined ? `?labelSelector=${enc(sel)}` : '';
    const path = kind === 'Node' ? `/api/v1/nodes${q}` : `${collection(kind as Exclude<Kind, 'Node'>)}${q}`;
    const a = await this.api.request('GET', path);
    if (a.status !== 200) throw mapError(kind, '(list)', a);
    const prefix = opts?.prefix ?? '';
    const items = ((a.json?.items ?? []) as K8sObject[])
      .map((o) => (kind === 'Node' ? nodeFromK8s(o) : fromK8s<K>(kind, o)))
      .filter((r): r is Resource<K> => r !== undefined && r.metadata.name.startsWith(prefix));
    return { items, revision: String(a.json?.metadata?.resourceVersion ?? '0') };
  }

  /** Ordered: each op in turn; the first failure stops the batch and is thrown. */
  async apply(ops: WriteOp[]): Promise<(Resource | undefined)[]> {
    const out: (Resource | undefined)[] = [];
    for (const op of ops) {
      if (op.op === 'create') out.push(await this.create(op.res));
      else if (op.op === 'update') out.push(await this.update(op.res));
      else { await this.delete(op.kind, op.name, op.revision); out.push(undefined); }
    }
    return out;
  }

  watch<K extends Kind>(kind: K, revision: string, handlers: WatchHandlers<K>): Watch {
    checkKey(kind, '-');
    const base = kind === 'Node' ? '/api/v1/nodes' : collection(kind as Exclude<Kind, 'Node'>);
    let rev = revision;
    let closed = false;
    let s: { close(): void } | undefined;
    const marked = new Set<string>();
    const stop = (err?: Error) => {
      if (closed) return;
      closed = true;
      s?.close();
      this.watches.delete(w);
      if (err) handlers.onError(err);
    };
    const open = () => {
      s = this.api.stream(`${base}?watch=1&resourceVersion=${enc(rev)}&allowWatchBookmarks=true`, (ev) => {
        if (closed) return;
        if (ev.type === 'ERROR') {
          const st = ev.object ?? {};
          return stop(statusError(`kubernetes watch ${kind}`, Number(st.code ?? 500), st));
        }
        const obj = ev.object as K8sObject | undefined;
        if (!obj?.metadata) return;
        if (obj.metadata.resourceVersion) rev = obj.metadata.resourceVersion;
        if (ev.type === 'BOOKMARK') return;
        let type = ev.type as WatchEventType;
        let res: Resource<K> | undefined;
        if (kind === 'Node') {
          res = nodeFromK8s(obj) as Resource<K> | undefined;
          const name = obj.metadata.name;
          if (!res) {
            // Annotations removed (or never there): a Brindle Node deletion, if we knew it.
            if (!marked.delete(name) && type !== 'DELETED') return;
            if (type !== 'DELETED') type = 'DELETED';
            res = { kind, metadata: { name, revision: rev }, spec: {} as Resource<K>['spec'] };
          } else if (type === 'DELETED') {
            marked.delete(name);
          } else {
            marked.add(name);
          }
        } else {
          res = fromK8s<K>(kind, obj);
        }
        handlers.onEvent({ type, object: res });
      }, (err) => {
        if (closed) return;
        // The API server ends watches after a while: continue from the last revision seen.
        if (!err) return open();
        stop(err);
      });
    };
    const w: Watch = { close: () => stop() };
    this.watches.add(w);
    open();
    return w;
  }

  /** The pod's annotations (GET /api/v1/namespaces/<ns>/pods/<pod>); {} when the pod is not there. */
  async podAnnotations(namespace: string, pod: string): Promise<Record<string, string>> {
    return this.coreAnnotations(`pod ${namespace}/${pod}`, `/api/v1/namespaces/${enc(namespace)}/pods/${enc(pod)}`);
  }

  /** The namespace's annotations (GET /api/v1/namespaces/<ns>); {} when it is not there. */
  async namespaceAnnotations(namespace: string): Promise<Record<string, string>> {
    return this.coreAnnotations(`namespace ${namespace}`, `/api/v1/namespaces/${enc(namespace)}`);
  }

  private async coreAnnotations(what: string, path: string): Promise<Record<string, string>> {
    const a = await this.api.request('GET', path);
    if (a.status === 404) return {};
    if (a.status !== 200) throw statusError(what, a.status, a.json);
    const ann = (a.json as K8sObject | undefined)?.metadata?.annotations;
    const out: Record<string, string> = {};
    if (ann && typeof ann === 'object') for (const [k, v] of Object.entries(ann)) if (typeof v === 'string') out[k] = v;
    return out;
  }

  async ping(): Promise<void> {
    const a = await this.api.request('GET', `${collection('IPPool')}?limit=1`);
    if (a.status !== 200) throw statusError('kubernetes ping', a.status, a.json);
  }

  async close(): Promise<void> {
    for (const w of [...this.watches]) w.close();
    this.api.close();
  }

  private async getNode(name: string): Promise<{ res: Resource<'Node'>; obj: K8sObject }> {
    const obj = await this.getCoreNode(name);
    const res = nodeFromK8s(obj);
    if (!res) throw notFound('Node', name);
    return { res, obj };
  }

  private async getCoreNode(name: string): Promise<K8sObject> {
    const a = await this.api.request('GET', `/api/v1/nodes/${enc(name)}`);
    if (a.status !== 200) {
      const err = mapError('Node', name, a);
      if (err instanceof NotFoundError) throw new NotFoundError(`Node ${name}: no kubernetes node of that name`);
      throw err;
    }
    return a.json as K8sObject;
  }

  /** Create/update/delete of a Brindle Node = rewriting the annotations of the Kubernetes Node. */
  private async writeNode(op: 'create' | 'update' | 'delete', res: Resource<'Node'>): Promise<Resource<'Node'> | undefined> {
    const name = res.metadata.name;
    const want = res.metadata.revision;
    for (let i = 0; ; i++) {
      const obj = await this.getCoreNode(name);
      const have = nodeFromK8s(obj) !== undefined;
      if (op === 'create' && have) throw alreadyExists('Node', name);
      if (op !== 'create' && !have) throw notFound('Node', name);
      if (op !== 'create' && want !== undefined && want !== obj.metadata.resourceVersion) {
        throw conflict('Node', name, want, obj.metadata.resourceVersion);
      }
      const annotations = { ...(obj.metadata.annotations ?? {}) };
      for (const k of Object.values(NODE_ANNOTATIONS)) delete annotations[k];
      let labels = obj.metadata.labels;
      if (op !== 'delete') {
        Object.assign(annotations, nodeAnnotations(res.spec));
        labels = op === 'create' ? { ...(labels ?? {}), ...(res.metadata.labels ?? {}) } : { ...(res.metadata.labels ?? {}) };
      }
      const body = { ...obj, metadata: { ...obj.metadata, annotations, labels } };
      const a = await this.api.request('PUT', `/api/v1/nodes/${enc(name)}`, body);
      if (a.status === 200) return op === 'delete' ? undefined : nodeFromK8s(a.json as K8sObject);
      const err = mapError('Node', name, a);
      // The kubelet writes the same object: retry unless the caller pinned a revision.
      if (!(err instanceof ConflictError) || want !== undefined || i >= UNCONDITIONAL_RETRIES) throw err;
    }
  }
}

function mapError(kind: Kind, name: string, a: Answer): Error {
  const reason = String(a.json?.reason ?? '');
  if (a.status === 409 && reason === 'AlreadyExists') return alreadyExists(kind, name);
  if (a.status === 409) return conflict(kind, name);
  if (a.status === 404 && reason === 'NotFound') return notFound(kind, name);
  return statusError(`${kind} ${name}`, a.status, a.json);
}

/** The custom resource for a Brindle resource. */
function toK8s(res: Resource, withRevision: boolean): K8sObject {
  const name = k8sName(res.metadata.name);
  const annotations = { ...(res.metadata.annotations ?? {}) };
  if (name !== res.metadata.name) annotations[NAME_ANNOTATION] = res.metadata.name;
  const metadata: K8sObject['metadata'] = { name };
  if (res.metadata.labels && Object.keys(res.metadata.labels).length) metadata.labels = res.metadata.labels;
  if (Object.keys(annotations).length) metadata.annotations = annotations;
  if (withRevision && res.metadata.revision !== undefined) metadata.resourceVersion = res.metadata.revision;
  return { apiVersion: `${GROUP}/${VERSION}`, kind: res.kind, metadata, spec: res.spec };
}

function fromK8s<K extends Kind>(kind: K, obj: K8sObject): Resource<K> {
  const m = obj.metadata;
  const annotations = { ...(m.annotations ?? {}) };
  const name = annotations[NAME_ANNOTATION] ?? m.name;
  delete annotations[NAME_ANNOTATION];
  const metadata: Resource['metadata'] = { name, revision: m.resourceVersion };
  if (m.labels && Object.keys(m.labels).length) metadata.labels = m.labels;
  if (Object.keys(annotations).length) metadata.annotations = annotations;
  if (m.creationTimestamp) metadata.creationTimestamp = m.creationTimestamp;
  return { kind, metadata, spec: (obj.spec ?? {}) as Resource<K>['spec'] };
}

/** Brindle's Node from a Kubernetes Node, or undefined when it carries no brindle.dev/node mark. */
export function nodeFromK8s(obj: K8sObject): Resource<'Node'> | undefined {
  const a = obj.metadata.annotations ?? {};
  if (a[NODE_ANNOTATIONS.node] === undefined) return undefined;
  const spec: NodeSpec = {};
  const bgp: NonNullable<NodeSpec['bgp']> = {};
  if (a[NODE_ANNOTATIONS.ipv4Address]) bgp.ipv4Address = a[NODE_ANNOTATIONS.ipv4Address];
  if (a[NODE_ANNOTATIONS.ipv6Address]) bgp.ipv6Address = a[NODE_ANNOTATIONS.ipv6Address];
  if (a[NODE_ANNOTATIONS.asNumber]) {
    const asn = Number(a[NODE_ANNOTATIONS.asNumber]);
    if (Number.isInteger(asn)) bgp.asNumber = asn;
  }
  if (a[NODE_ANNOTATIONS.routeReflectorClusterID]) bgp.routeReflectorClusterID = a[NODE_ANNOTATIONS.routeReflectorClusterID];
  if (Object.keys(bgp).length) spec.bgp = bgp;
  if (a[NODE_ANNOTATIONS.vxlanTunnelMACAddr]) spec.vxlanTunnelMACAddr = a[NODE_ANNOTATIONS.vxlanTunnelMACAddr];
  if (a[NODE_ANNOTATIONS.vxlanTunnelAddress]) spec.vxlanTunnelAddress = a[NODE_ANNOTATIONS.vxlanTunnelAddress];
  if (a[NODE_ANNOTATIONS.ipv4IPIPTunnelAddr]) spec.ipv4IPIPTunnelAddr = a[NODE_ANNOTATIONS.ipv4IPIPTunnelAddr];
  const metadata: Resource['metadata'] = { name: obj.metadata.name, revision: obj.metadata.resourceVersion };
  if (obj.metadata.labels && Object.keys(obj.metadata.labels).length) metadata.labels = { ...obj.metadata.labels };
  if (obj.metadata.creationTimestamp) metadata.creationTimestamp = obj.metadata.creationTimestamp;
  return { kind: 'Node', metadata, spec };
}

function nodeAnnotations(spec: NodeSpec): Record<string, string> {
  const out: Record<string, string> = { [NODE_ANNOTATIONS.node]: 'true' };
  const set = (k: string, v: unknown) => { if (v !== undefined && v !== null && v !== '') out[k] = String(v); };
  set(NODE_ANNOTATIONS.ipv4Address, spec.bgp?.ipv4Address);
  set(NODE_ANNOTATIONS.ipv6Address, spec.bgp?.ipv6Address);
  set(NODE_ANNOTATIONS.asNumber, spec.bgp?.asNumber);
  set(NODE_ANNOTATIONS.routeReflectorClusterID, spec.bgp?.routeReflectorClusterID);
  set(NODE_ANNOTATIONS.vxlanTunnelMACAddr, spec.vxlanTunnelMACAddr);
  set(NODE_ANNOTATIONS.vxlanTunnelAddress, spec.vxlanTunnelAddress);
  set(NODE_ANNOTATIONS.ipv4IPIPTunnelAddr, spec.ipv4IPIPTunnelAddr);
  return out;
}
