// A stand-in Kubernetes API server (node:http, in-process) keeping the documented semantics
// the kubernetes datastore relies on: CRUD on /apis/brindle.dev/v1/<plural> and
// /api/v1/nodes; one global resourceVersion; 409 AlreadyExists on create and 409 Conflict on
// a stale update or delete precondition (Status objects with reason and code as the real
// server sends them); 404 NotFound; 422 Invalid for bad names and resourceVersion-less
// custom resource updates; labelSelector on list and watch; watch with resourceVersion
// streaming ADDED/MODIFIED/DELETED and 410 Gone (ERROR event) for a revision it no longer
// keeps; bearer token or client certificate authentication (401). Core namespaces and pods
// are read-only (GET of one object or a list; the test adds them with addNamespace/addPod),
// for the IPAM's annotations. Serves HTTPS when given a certificate: it asks for a client
// certificate but, like kube-apiserver, accepts a bearer token instead.
//
// labelSelector is parsed here independently of lib/ (so a backend bug is not mirrored):
// k=v, k==v, k!=v, k in (a,b), k notin (a,b), k, !k, joined by commas; anything else is 400
// BadRequest as the real server answers. Every selector received is recorded.
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

export const CRD_PLURALS = ['ippools', 'ipamblocks', 'blockaffinities', 'ipamhandles', 'ipamconfigs', 'bgpconfigurations', 'bgppeers'];

type Obj = { apiVersion?: string; kind?: string; metadata: Record<string, any>; [k: string]: unknown };
type Event = { rv: number; coll: string; type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: Obj };

export interface FakeApiServerOptions {
  /** Require "Authorization: Bearer <token>" (or, with tls.ca, a client certificate). */
  token?: string;
  /**
   * Serve HTTPS with this certificate (PEM). With `ca`, clients may authenticate by a
   * certificate it signed (the user is its CN) instead of the token; then one is required.
   */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer };
  /** Watch history kept (events); older resourceVersions get 410 Gone. Default 1000. */
  history?: number;
}

export interface FakeApiServer {
  url: string;
  /** Registers a Kubernetes Node as the kubelet would. */
  addNode(name: string, labels?: Record<string, string>): Obj;
  /** Bumps a Node's status as a kubelet heartbeat would (new resourceVersion). */
  touchNode(name: string): void;
  /** Adds (or replaces) a Namespace with these annotations. */
  addNamespace(name: string, annotations?: Record<string, string>): Obj;
  /** Adds (or replaces) a Pod in a namespace (which must exist, as in Kubernetes). */
  addPod(namespace: string, name: string, annotations?: Record<string, string>): Obj;
  /** Drops all watch history (later watches from old revisions get 410 Gone). */
  compact(): void;
  /** Removes every object (keeps the resourceVersion counter). */
  reset(): void;
  /** Requests served, by method. */
  requests: Record<string, number>;
  /** Authenticated requests by how: "token" or "cert:<CN>". */
  auth: Record<string, number>;
  /** Every labelSelector query parameter received, in order. */
  selectors: string[];
  /** Changes the bearer token the server accepts (a rotated service account token). */
  setToken(token: string): void;
  stop(): Promise<void>;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function status(code: number, reason: string, message: string, details?: Record<string, unknown>) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, details, code };
}

type Labels = Record<string, string> | undefined;

/** A Kubernetes label selector as a predicate; a string (the reason) when it does not parse. */
function selector(sel: string | null): ((labels: Labels) => boolean) | string {
  const preds: ((l: Record<string, string>) => boolean)[] = [];
  const KEY = '((?:[a-z0-9.-]+/)?[A-Za-z0-9][-A-Za-z0-9_.]*)';
  const VAL = '([A-Za-z0-9][-A-Za-z0-9_.]*|)';
  // Split at commas outside parentheses.
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of sel ?? '') {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) { parts.push(cur); cur = ''; } else cur += ch;
  }
  parts.push(cur);
  if (parts.length === 1 && parts[0].trim() === '') return () => true;
  for (const p of parts) {
    let m: RegExpMatchArray | null;
    if ((m = p.match(new RegExp(`^\\s*!\\s*${KEY}\\s*$`)))) {
      const k = m[1]; preds.push((l) => !(k in l));
    } else if ((m = p.match(new RegExp(`^\\s*${KEY}\\s*$`)))) {
      const k = m[1]; preds.push((l) => k in l);
    } else if ((m = p.match(new RegExp(`^\\s*${KEY}\\s*(==|=|!=)\\s*${VAL}\\s*$`)))) {
      const [, k, op, v] = m;
      preds.push(op === '!=' ? (l) => l[k] !== v : (l) => l[k] === v);
    } else if ((m = p.match(new RegExp(`^\\s*${KEY}\\s+(in|notin)\\s*\\(([^()]*)\\)\\s*$`)))) {
      const [, k, op, list] = m;
      const vals = list.split(',').map((v) => v.trim());
      if (vals.length === 1 && vals[0] === '') return `unable to parse requirement: for 'in', 'notin' operators, values set can't be empty`;
      if (!vals.every((v) => new RegExp(`^${VAL}$`).test(v))) return `unable to parse requirement: invalid label value in ${JSON.stringify(list)}`;
      preds.push(op === 'in' ? (l) => k in l && vals.includes(l[k]) : (l) => !(k in l && vals.includes(l[k])));
    } else {
      return `unable to parse requirement: ${JSON.stringify(p.trim())}`;
    }
  }
  return (labels) => preds.every((f) => f(labels ?? {}));
}

const clone = <T>(o: T): T => JSON.parse(JSON.stringify(o));

/** Starts the fake API server on 127.0.0.1 with a free port. */
export async function startFakeApiServer(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const history = opts.history ?? 1000;
  let rv = 100;
  const store = new Map<string, Map<string, Obj>>();
  let events: Event[] = [];
  const watchers = new Set<{ coll: string; match: (l: any) => boolean; res: http.ServerResponse }>();
  const sockets = new Set<Socket>();
  const requests: Record<string, number> = {};
  const auth: Record<string, number> = {};
  const selectors: string[] = [];
  let token = opts.token;

  const coll = (c: string) => { let m = store.get(c); if (!m) store.set(c, m = new Map()); return m; };
  const emit = (c: string, type: Event['type'], object: Obj) => {
    const ev = { rv, coll: c, type, object: clone(object) };
    events.push(ev);
    if (events.length > history) events = events.slice(-history);
    for (const w of watchers) {
      if (w.coll === c && w.match(object.metadata.labels)) w.res.write(`${JSON.stringify({ type, object: ev.object })}\n`);
    }
  };

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    requests[req.method!] = (requests[req.method!] ?? 0) + 1;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        handle(req, res, Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        send(res, 500, status(500, 'InternalError', String(err)));
      }
    });
  };
  const server = opts.tls
    ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key, ca: opts.tls.ca, requestCert: !!opts.tls.ca, rejectUnauthorized: false }, onRequest)
    : http.createServer(onRequest);
  server.on(opts.tls ? 'secureConnection' : 'connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });

  function send(res: http.ServerResponse, code: number, body: unknown) {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  function handle(req: http.IncomingMessage, res: http.ServerResponse, text: string) {
    const sock = req.socket as TLSSocket;
    const cn = opts.tls?.ca && sock.authorized ? String(sock.getPeerCertificate().subject?.CN ?? '') : '';
    if (token !== undefined && req.headers.authorization === `Bearer ${token}`) auth.token = (auth.token ?? 0) + 1;
    else if (cn) auth[`cert:${cn}`] = (auth[`cert:${cn}`] ?? 0) + 1;
    else if (token !== undefined || opts.tls?.ca) return send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    const url = new URL(req.url!, 'http://x');
    const selParam = url.searchParams.get('labelSelector');
    if (selParam !== null) selectors.push(selParam);
    const sel = selector(selParam);
    if (typeof sel === 'string') return send(res, 400, status(400, 'BadRequest', sel));
    let m = url.pathname.match(/^\/apis\/brindle\.dev\/v1\/([a-z]+)(?:\/([^/]+))?$/);
    let c: string;
    let group: string;
    let custom = true;
    if (m && CRD_PLURALS.includes(m[1])) {
      c = m[1];
      group = `${m[1]}.brindle.dev`;
    } else if ((m = url.pathname.match(/^\/api\/v1\/namespaces(?:\/([^/]+)(?:\/pods(?:\/([^/]+))?)?)?$/)) && !url.pathname.endsWith('/')) {
      return core(req, res, sel, m[1] === undefined ? undefined : decodeURIComponent(m[1]), url.pathname.includes('/pods'), m[2] === undefined ? undefined : decodeURIComponent(m[2]));
    } else if ((m = url.pathname.match(/^\/api\/v1\/(nodes)(?:\/([^/]+))?$/))) {
      c = 'nodes';
      group = 'nodes';
      custom = false;
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      return res.end('404 page not found\n');
    }
    const name = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
    const objects = coll(c);
    const body = text ? JSON.parse(text) : undefined;
    const notFound = (n: string) => send(res, 404, status(404, 'NotFound', `${group} "${n}" not found`, { name: n, kind: c }));
    const conflict = (n: string) => send(res, 409, status(409, 'Conflict',
      `Operation cannot be fulfilled on ${group} "${n}": the object has been modified; please apply your changes to the latest version and try again`,
      { name: n, kind: c }));

    if (req.method === 'GET' && name === undefined) {
      const match = sel;
      if (url.searchParams.get('watch') === '1' || url.searchParams.get('watch') === 'true') {
        const from = Number(url.searchParams.get('resourceVersion') ?? '0');
        res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
        if (!from) {
          for (const o of objects.values()) if (match(o.metadata.labels)) res.write(`${JSON.stringify({ type: 'ADDED', object: o })}\n`);
        } else {
          const oldest = events.length ? events[0].rv : rv + 1;
          if (from < oldest - 1 && from < rv) {
            res.write(`${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${oldest - 1})`) })}\n`);
            return res.end();
          }
          for (const ev of events) {
            if (ev.rv > from && ev.coll === c && match(ev.object.metadata.labels)) res.write(`${JSON.stringify({ type: ev.type, object: ev.object })}\n`);
          }
        }
        const w = { coll: c, match, res };
        watchers.add(w);
        res.on('close', () => watchers.delete(w));
        return;
      }
      const items = [...objects.values()].filter((o) => match(o.metadata.labels))
        .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
      return send(res, 200, { kind: custom ? 'List' : 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: String(rv) }, items });
    }
    if (req.method === 'GET') {
      const o = objects.get(name!);
      return o ? send(res, 200, o) : notFound(name!);
    }
    if (req.method === 'POST' && name === undefined) {
      const n = body?.metadata?.name;
      if (typeof n !== 'string' || !DNS_SUBDOMAIN.test(n) || n.length > 253) {
        return send(res, 422, status(422, 'Invalid', `${group} "${n}" is invalid: metadata.name: Invalid value`));
      }
      if (objects.has(n)) return send(res, 409, status(409, 'AlreadyExists', `${group} "${n}" already exists`, { name: n, kind: c }));
      rv++;
      const o: Obj = clone(body);
      o.metadata = { ...o.metadata, resourceVersion: String(rv), uid: `uid-${rv}`, creationTimestamp: new Date().toISOString(), generation: 1 };
      objects.set(n, o);
      emit(c, 'ADDED', o);
      return send(res, 201, o);
    }
    if (req.method === 'PUT' && name !== undefined) {
      const cur = objects.get(name);
      if (!cur) return notFound(name);
      if (body?.metadata?.name !== name) return send(res, 400, status(400, 'BadRequest', 'the name of the object does not match the name on the URL'));
      const want = body.metadata.resourceVersion;
      if (want === undefined || want === '') {
        if (custom) return send(res, 422, status(422, 'Invalid', `${group} "${name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`));
      } else if (want !== cur.metadata.resourceVersion) {
        return conflict(name);
      }
      rv++;
      const o: Obj = clone(body);
      o.metadata = { ...o.metadata, resourceVersion: String(rv), uid: cur.metadata.uid, creationTimestamp: cur.metadata.creationTimestamp };
      objects.set(name, o);
      emit(c, 'MODIFIED', o);
      return send(res, 200, o);
    }
    if (req.method === 'DELETE' && name !== undefined) {
      const cur = objects.get(name);
      if (!cur) return notFound(name);
      const pre = body?.preconditions?.resourceVersion;
      if (pre !== undefined && pre !== cur.metadata.resourceVersion) return conflict(name);
      rv++;
      objects.delete(name);
      const gone = clone(cur);
      gone.metadata.resourceVersion = String(rv);
      emit(c, 'DELETED', gone);
      return send(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, kind: c } });
    }
    send(res, 405, status(405, 'MethodNotAllowed', `${req.method} is not supported`));
  }

  /** GET of namespaces and pods (namespaced by "<ns>/<pod>" keys in the 'pods' collection). */
  function core(req: http.IncomingMessage, res: http.ServerResponse, match: (l: Labels) => boolean, ns: string | undefined, pods: boolean, pod: string | undefined) {
    if (req.method !== 'GET') return send(res, 405, status(405, 'MethodNotAllowed', `${req.method} is not supported`));
    if (!pods) {
      if (ns === undefined) {
        const items = [...coll('namespaces').values()].filter((o) => match(o.metadata.labels));
        return send(res, 200, { kind: 'NamespaceList', apiVersion: 'v1', metadata: { resourceVersion: String(rv) }, items });
      }
      const o = coll('namespaces').get(ns);
      return o ? send(res, 200, o) : send(res, 404, status(404, 'NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' }));
    }
    if (pod === undefined) {
      const items = [...coll('pods').values()].filter((o) => o.metadata.namespace === ns && match(o.metadata.labels));
      return send(res, 200, { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: String(rv) }, items });
    }
    const o = coll('pods').get(`${ns}/${pod}`);
    return o ? send(res, 200, o) : send(res, 404, status(404, 'NotFound', `pods "${pod}" not found`, { name: pod, kind: 'pods' }));
  }

  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests,
    auth,
    selectors,
    setToken(t) { token = t; },
    addNode(name, labels = {}) {
      rv++;
      const o: Obj = {
        apiVersion: 'v1', kind: 'Node',
        metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels }, annotations: {}, resourceVersion: String(rv), uid: `uid-${rv}`, creationTimestamp: new Date().toISOString() },
        spec: {}, status: { conditions: [] },
      };
      coll('nodes').set(name, o);
      emit('nodes', 'ADDED', o);
      return clone(o);
    },
    touchNode(name) {
      const o = coll('nodes').get(name);
      if (!o) throw new Error(`fake apiserver: node ${name}: not found`);
      rv++;
      o.metadata.resourceVersion = String(rv);
      (o.status as any).heartbeat = rv;
      emit('nodes', 'MODIFIED', o);
    },
    addNamespace(name, annotations = {}) {
      rv++;
      const o: Obj = {
        apiVersion: 'v1', kind: 'Namespace',
        metadata: { name, labels: { 'kubernetes.io/metadata.name': name }, annotations, resourceVersion: String(rv), uid: `uid-${rv}`, creationTimestamp: new Date().toISOString() },
        spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' },
      };
      coll('namespaces').set(name, o);
      return clone(o);
    },
    addPod(namespace, name, annotations = {}) {
      if (!coll('namespaces').has(namespace)) throw new Error(`fake apiserver: namespace ${namespace}: not found`);
      rv++;
      const o: Obj = {
        apiVersion: 'v1', kind: 'Pod',
        metadata: { name, namespace, annotations, resourceVersion: String(rv), uid: `uid-${rv}`, creationTimestamp: new Date().toISOString() },
        spec: { containers: [{ name: 'c', image: 'pause' }] }, status: { phase: 'Pending' },
      };
      coll('pods').set(`${namespace}/${name}`, o);
      return clone(o);
    },
    compact() { events = []; },
    reset() { store.clear(); events = []; },
    async stop() {
      for (const w of watchers) w.res.end();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
