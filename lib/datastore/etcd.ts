// The etcd backend: etcd v3 through its JSON gRPC gateway (/v3/kv/range, /v3/kv/txn,
// /v3/watch) over plain node:http(s) with a keep-alive agent. Keys /brindle/v1/<kind>/<name>
// (kind lower-cased), values the resource JSON without its revision; the revision is the key's
// mod_revision. Every write is one txn whose compares carry the revision guards; its failure
// branch reads the keys back so the typed error needs no second round trip.
//
// Values over COMPRESS_OVER bytes (IPAM blocks) are stored zlib-deflated: the gateway decodes
// each request with reflection-driven JSON (jsonpb) that rescans a base64 value once per
// nesting level, and that decoding, not the store, is most of etcd's CPU per allocation.
// A stored value starting with "{" is plain JSON, one starting with 0x78 a zlib stream.
import fs = require('node:fs');
import http = require('node:http');
import { alreadyExists, ApplyWrites, checkKey, conflict, listFilter, ndjsonReader, notFound, stripRevision } from './common';
import { exchange, tlsError } from './http';
import {
  ConflictError, DatastoreError, ExpiredError, KINDS, UnavailableError,
  type Datastore, type DatastoreSettings, type Kind, type ListOptions, type ListResult, type ReadOp, type ReadResult, type Resource,
  type Watch, type WatchHandlers, type WriteOp,
} from './types';

export const KEY_PREFIX = '/brindle/v1/';
const DEFAULT_TIMEOUT_MS = 2000;

// gRPC status codes carried in the gateway's error body.
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_OUT_OF_RANGE = 11;
const GRPC_UNAVAILABLE = 14;
const GRPC_UNAUTHENTICATED = 16;

/** An error answer from etcd (gateway JSON `{error, code, message}`). */
export class EtcdError extends DatastoreError {
  override name = 'EtcdError';
  constructor(message: string, readonly grpcCode: number, readonly httpStatus: number) { super(message); }
}

interface KeyValue { key: string; value?: string; create_revision?: string; mod_revision?: string; version?: string }
interface Header { revision?: string }
interface RangeResponse { header?: Header; kvs?: KeyValue[]; count?: string }
interface TxnResponse {
  header?: Header;
  succeeded?: boolean;
  responses?: { response_range?: RangeResponse; response_put?: unknown; response_delete_range?: { deleted?: string } }[];
}

type Https = typeof import('node:https');
type Zlib = typeof import('node:zlib');

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString('utf8');

/** Stored values longer than this (JSON bytes) are deflated. */
export const COMPRESS_OVER = 1024;
const ZLIB_CMF = 0x78; // RFC 1950: deflate with a 32 KiB window; never "{" (0x7b)
// node:zlib is not in Node's start-up snapshot: loaded at the first large value.
let zlib: Zlib | undefined;

/** The base64 etcd value of a resource's JSON: as is, or deflated when large. */
export function encodeValue(json: string, over = COMPRESS_OVER): string {
  const raw = Buffer.from(json, 'utf8');
  if (raw.length <= over) return raw.toString('base64');
  zlib ??= require('node:zlib') as Zlib;
  return zlib.deflateSync(raw, { level: 1 }).toString('base64');
}

/** The JSON text of a stored value (either form). */
export function decodeValue(value: string | undefined): string {
  const raw = Buffer.from(value ?? '', 'base64');
  if (raw[0] !== ZLIB_CMF) return raw.toString('utf8');
  zlib ??= require('node:zlib') as Zlib;
  return zlib.inflateSync(raw).toString('utf8');
}

/** etcd key of one resource. */
export function etcdKey(kind: Kind, name: string): string {
  return `${KEY_PREFIX}${kind.toLowerCase()}/${name}`;
}

/** The range_end that makes [key, end) every key starting with `prefix` (base64). */
export function prefixEnd(prefix: string): string {
  const b = Buffer.from(prefix, 'utf8');
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 0xff) {
      const end = Buffer.from(b.subarray(0, i + 1));
      end[i]++;
      return end.toString('base64');
    }
  }
  return 'AA=='; // "\0": to the end of the keyspace
}

const KIND_BY_LOWER = new Map(KINDS.map((k) => [k.toLowerCase(), k]));

function decodeKv<K extends Kind>(kv: KeyValue, revision?: string): Resource<K> {
  const res = JSON.parse(decodeValue(kv.value)) as Resource<K>;
  res.metadata.revision = revision ?? kv.mod_revision;
  return res;
}

/** Minimal HTTP/JSON client for the gateway: keep-alive, deadlines, endpoint failover, auth. */
class GatewayClient {
  private readonly endpoints: URL[];
  private current = 0;
  private readonly mod: typeof http | Https;
  readonly agent: http.Agent;
  private token: string | undefined;
  private authing: Promise<void> | undefined;

  constructor(private readonly s: DatastoreSettings, readonly timeoutMs: number) {
    this.endpoints = (s.etcdEndpoints ?? []).map((e) => new URL(e.includes('://') ? e : `http://${e}`));
    if (this.endpoints.length === 0) throw new TypeError('datastore etcd: no endpoints');
    // node:https (and TLS) only for https endpoints: a plain-http plugin start loads neither.
    const https = this.endpoints[0].protocol === 'https:' ? require('node:https') as Https : undefined;
    this.mod = https ?? http;
    this.agent = https
      ? new https.Agent({
        keepAlive: true,
        key: s.etcdKeyFile ? fs.readFileSync(s.etcdKeyFile) : undefined,
        cert: s.etcdCertFile ? fs.readFileSync(s.etcdCertFile) : undefined,
        ca: s.etcdCaCertFile ? fs.readFileSync(s.etcdCaCertFile) : undefined,
      })
      : new http.Agent({ keepAlive: true });
  }

  /** POSTs `body` to `path`; the whole exchange (failover included) within the deadline. */
  async call<T>(path: string, body: unknown, deadline = Date.now() + this.timeoutMs): Promise<T> {
    if (this.s.etcdUsername && this.token === undefined && path !== '/v3/auth/authenticate') await this.authenticate(deadline);
    const payload = JSON.stringify(body);
    let lastErr: Error | undefined;
    for (let tries = 0; tries < this.endpoints.length; tries++) {
      const idx = this.current;
      try {
        return await this.once<T>(this.endpoints[idx], path, payload, deadline);
      } catch (err) {
        if (err instanceof EtcdError && err.grpcCode === GRPC_UNAUTHENTICATED && this.s.etcdUsername && path !== '/v3/auth/authenticate') {
          // Token expired or etcd restarted: authenticate again, once.
          this.token = undefined;
          await this.authenticate(deadline);
          return this.once<T>(this.endpoints[idx], path, payload, deadline);
        }
        if (!(err instanceof ConnectError)) throw err;
        lastErr = err;
        this.current = (idx + 1) % this.endpoints.length;
      }
    }
    throw new UnavailableError(`etcd ${this.endpoints.map((e) => e.host).join(',')}: ${lastErr?.message ?? 'unreachable'}`);
  }

  private authenticate(deadline: number): Promise<void> {
    this.authing ??= this.call<{ token?: string }>('/v3/auth/authenticate',
      { name: this.s.etcdUsername, password: this.s.etcdPassword ?? '' }, deadline)
      .then((r) => { this.token = r.token ?? ''; })
      .finally(() => { this.authing = undefined; });
    return this.authing;
  }

  private async once<T>(ep: URL, path: string, payload: string, deadline: number): Promise<T> {
    const what = `etcd ${ep.host}${path}`;
    const headers: http.OutgoingHttpHeaders = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(payload),
    };
    if (this.token) headers.authorization = this.token;
    const a = await exchange(this.mod, {
      host: ep.hostname.replace(/^\[|\]$/g, ''), port: ep.port || (ep.protocol === 'https:' ? 443 : 80),
      method: 'POST', path, headers, agent: this.agent,
    }, payload, what, deadline, this.timeoutMs,
    (err) => (CONNECT_CODES.has(err.code ?? '') ? new ConnectError(`${ep.host}: ${err.code}`) : tlsError(what, ep.origin, err)));
    let json: any;
    try {
      json = JSON.parse(a.text || '{}');
    } catch {
      throw new UnavailableError(`${what}: status ${a.status}: bad json`);
    }
    if (a.status === 200 && !json.error) return json as T;
    throw gatewayError(what, a.status, json);
  }

  /** Opens a streaming POST (watch); resolves with the response once headers arrive. */
  stream(path: string, body: unknown, onLine: (json: any) => void, onEnd: (err: Error) => void): { close(): void } {
    const ep = this.endpoints[this.current];
    const payload = JSON.stringify(body);
    let closed = false;
    let gotResponse = false;
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) };
    const end = (err: Error) => { if (!closed) { closed = true; clearTimeout(timer); req.destroy(); onEnd(err); } };
    const start = async () => {
      if (this.s.etcdUsername && this.token === undefined) await this.authenticate(Date.now() + this.timeoutMs);
      if (this.token) headers.authorization = this.token;
    };
    let req!: http.ClientRequest;
    const timer = setTimeout(() => { if (!gotResponse) end(new UnavailableError(`etcd ${ep.host}${path}: no answer within ${this.timeoutMs} ms`)); }, this.timeoutMs);
    start().then(() => {
      if (closed) return;
      req = this.mod.request({
        host: ep.hostname.replace(/^\[|\]$/g, ''), port: ep.port || (ep.protocol === 'https:' ? 443 : 80),
        method: 'POST', path, headers,
        // Own connection: a watch holds its socket for its lifetime.
        agent: false, key: this.agentOpt('key'), cert: this.agentOpt('cert'), ca: this.agentOpt('ca'),
      } as import('node:https').RequestOptions, (res) => {
        gotResponse = true;
        clearTimeout(timer);
        res.setEncoding('utf8');
        res.on('data', ndjsonReader((json) => {
          if (closed) return;
          if (res.statusCode !== 200 || json.error) return end(gatewayError(`etcd ${ep.host}${path}`, res.statusCode ?? 0, json.error ?? json));
          onLine(json);
        }, () => end(new UnavailableError(`etcd ${ep.host}${path}: bad json in stream`))));
        res.on('end', () => end(new UnavailableError(`etcd ${ep.host}${path}: stream ended`)));
        res.on('error', (err) => end(new UnavailableError(`etcd ${ep.host}${path}: ${err.message}`)));
      });
      req.on('error', (err: NodeJS.ErrnoException) => end(tlsError(`etcd ${ep.host}${path}`, ep.origin, err) ?? new UnavailableError(`etcd ${ep.host}${path}: ${err.code ?? err.message}`)));
      req.end(payload);
    }, (err: Error) => end(err));
    return { close: () => { if (!closed) { closed = true; clearTimeout(timer); req?.destroy(); } } };
  }

  private agentOpt(k: 'key' | 'cert' | 'ca'): unknown {
    return (this.agent as import('node:https').Agent).options?.[k];
  }

  close(): void { this.agent.destroy(); }
}

class ConnectError extends Error {}
const CONNECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

function gatewayError(what: string, status: number, json: any): Error {
  const code = Number(json?.code ?? 0);
  const msg = String(json?.message ?? json?.error ?? `status ${status}`);
  if (code === GRPC_OUT_OF_RANGE || /compacted/.test(msg)) return new ExpiredError(`${what}: ${msg}`);
  if (code === GRPC_UNAVAILABLE || code === GRPC_DEADLINE_EXCEEDED || status >= 502) {
    return new UnavailableError(`${what}: ${msg}`);
  }
  return new EtcdError(`${what}: ${msg}`, code, status);
}

export class EtcdDatastore extends ApplyWrites implements Datastore {
  readonly type = 'etcd' as const;
  private readonly client: GatewayClient;
  private readonly watches = new Set<{ close(): void }>();

  private readonly compressOver: number;

  constructor(settings: DatastoreSettings) {
    super();
    this.compressOver = settings.etcdCompressOver ?? COMPRESS_OVER;
    this.client = new GatewayClient(settings, settings.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  }

  async get<K extends Kind>(kind: K, name: string): Promise<Resource<K>> {
    checkKey(kind, name);
    const r = await this.client.call<RangeResponse>('/v3/kv/range', { key: b64(etcdKey(kind, name)) });
    const kv = r.kvs?.[0];
    if (!kv) throw notFound(kind, name);
    return decodeKv<K>(kv);
  }

  async list<K extends Kind>(kind: K, opts?: ListOptions): Promise<ListResult<K>> {
    checkKey(kind, '-');
    const keep = listFilter(opts); // a malformed selector fails before the request
    const prefix = etcdKey(kind, opts?.prefix ?? '');
    const r = await this.client.call<RangeResponse>('/v3/kv/range', { key: b64(prefix), range_end: prefixEnd(prefix) });
    const items = (r.kvs ?? []).map((kv) => decodeKv<K>(kv)).filter(keep) as Resource<K>[];
    return { items, revision: r.header?.revision ?? '0' };
  }

  /** One read-only txn of ranges: every read at one revision, one round trip. */
  async read(ops: ReadOp[]): Promise<ReadResult[]> {
    if (ops.length === 0) return [];
    const keeps: ((r: Resource) => boolean)[] = [];
    const success = ops.map((o, i) => {
      checkKey(o.kind, o.op === 'get' ? o.name : '-');
      if (o.op === 'get') return { request_range: { key: b64(etcdKey(o.kind, o.name)) } };
      keeps[i] = listFilter(o.opts);
      const prefix = etcdKey(o.kind, o.opts?.prefix ?? '');
      return { request_range: { key: b64(prefix), range_end: prefixEnd(prefix) } };
    });
    const r = await this.client.call<TxnResponse>('/v3/kv/txn', { compare: [], success, failure: [] });
    return ops.map((o, i) => {
      const kvs = r.responses?.[i]?.response_range?.kvs ?? [];
      if (o.op === 'get') return kvs[0] ? decodeKv(kvs[0]) : undefined;
      return kvs.map((kv) => decodeKv(kv)).filter(keeps[i]);
    });
  }

  /** One txn: every op's guard is a compare; all apply at one revision or none do. */
  async apply(ops: WriteOp[]): Promise<(Resource | undefined)[]> {
    if (ops.length === 0) return [];
    const compare: unknown[] = [];
    const success: unknown[] = [];
    const failure: unknown[] = [];
    const stored: (Resource | undefined)[] = [];
    const now = new Date().toISOString();
    for (const op of ops) {
      const kind = op.op === 'delete' ? op.kind : op.res.kind;
      const name = op.op === 'delete' ? op.name : op.res.metadata?.name;
      checkKey(kind, name);
      const key = b64(etcdKey(kind, name));
      const rev = op.op === 'delete' ? op.revision : op.op === 'update' ? op.res.metadata.revision : undefined;
      if (op.op === 'create') compare.push({ key, target: 'CREATE', result: 'EQUAL', create_revision: '0' });
      else if (rev !== undefined) compare.push({ key, target: 'MOD', result: 'EQUAL', mod_revision: rev });
      else compare.push({ key, target: 'CREATE', result: 'GREATER', create_revision: '0' });
      failure.push({ request_range: { key, keys_only: true } });
      if (op.op === 'delete') {
        success.push({ request_delete_range: { key } });
        stored.push(undefined);
      } else {
        const s = stripRevision(op.res);
        if (op.op === 'create') s.metadata.creationTimestamp = now;
        success.push({ request_put: { key, value: encodeValue(JSON.stringify(s), this.compressOver) } });
        stored.push(s);
      }
    }
    const r = await this.client.call<TxnResponse>('/v3/kv/txn', { compare, success, failure });
    if (!r.succeeded) throw txnFailure(ops, r);
    const revision = r.header?.revision;
    return stored.map((s) => s && { ...s, metadata: { ...s.metadata, revision } });
  }

  watch<K extends Kind>(kind: K, revision: string, handlers: WatchHandlers<K>): Watch {
    checkKey(kind, '-');
    const prefix = etcdKey(kind, '');
    let closed = false;
    const body = {
      create_request: {
        key: b64(prefix), range_end: prefixEnd(prefix), start_revision: String(BigInt(revision || '0') + 1n), prev_kv: true,
      },
    };
    const s = this.client.stream('/v3/watch', body, (json) => {
      const res = json.result ?? {};
      if (res.compact_revision && res.compact_revision !== '0') {
        return stop(new ExpiredError(`watch ${kind} from revision ${revision}: revision compacted (oldest ${res.compact_revision})`));
      }
      if (res.canceled) return stop(new UnavailableError(`watch ${kind}: canceled: ${res.cancel_reason ?? ''}`));
      for (const ev of (res.events ?? []) as { type?: string; kv: KeyValue; prev_kv?: KeyValue }[]) {
        if (closed) return;
        try {
          if (ev.type === 'DELETE') {
            const object = ev.prev_kv ? decodeKv<K>(ev.prev_kv, ev.kv.mod_revision) : orphan<K>(ev.kv);
            handlers.onEvent({ type: 'DELETED', object });
          } else {
            const added = ev.kv.create_revision === ev.kv.mod_revision;
            handlers.onEvent({ type: added ? 'ADDED' : 'MODIFIED', object: decodeKv<K>(ev.kv) });
          }
        } catch (err) {
          if (err instanceof SyntaxError) continue; // a foreign, non-JSON value under our prefix
          throw err;
        }
      }
    }, (err) => stop(err));
    const stop = (err?: Error) => {
      if (closed) return;
      closed = true;
      s.close();
      this.watches.delete(w);
      if (err) handlers.onError(err);
    };
    const w = { close: () => stop() };
    this.watches.add(w);
    return w;
  }

  async ping(): Promise<void> {
    await this.client.call('/v3/maintenance/status', {});
  }

  async close(): Promise<void> {
    for (const w of [...this.watches]) w.close();
    this.client.close();
  }
}

/** A DELETED event whose previous value etcd no longer has: name only. */
function orphan<K extends Kind>(kv: KeyValue): Resource<K> {
  const key = unb64(kv.key).slice(KEY_PREFIX.length);
  const slash = key.indexOf('/');
  const kind = KIND_BY_LOWER.get(key.slice(0, slash)) as K;
  return { kind, metadata: { name: key.slice(slash + 1), revision: kv.mod_revision }, spec: {} as Resource<K>['spec'] };
}

/** The typed error of the first op whose compare failed, from the failure branch's reads. */
function txnFailure(ops: WriteOp[], r: TxnResponse): Error {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    const kind = op.op === 'delete' ? op.kind : op.res.kind;
    const name = op.op === 'delete' ? op.name : op.res.metadata.name;
    const kv = r.responses?.[i]?.response_range?.kvs?.[0];
    if (op.op === 'create') {
      if (kv) return alreadyExists(kind, name);
      continue;
    }
    if (!kv) return notFound(kind, name);
    const want = op.op === 'delete' ? op.revision : op.res.metadata.revision;
    if (want !== undefined && want !== kv.mod_revision) return conflict(kind, name, want, kv.mod_revision);
  }
  return new ConflictError('txn: a compare failed but every key now matches');
}

