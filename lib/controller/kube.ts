// The controller's view of the Kubernetes API beyond Brindle's kinds: which pods exist (per
// namespace lists) and which Kubernetes Nodes exist. Plain node:http(s) JSON GETs with a
// deadline, like the kubernetes datastore; answers other than 200 become typed errors.
import http = require('node:http');
import https = require('node:https');
import type { KubeTarget } from '../datastore/kubeconfig';
import { UnavailableError } from '../datastore/types';
import { KubernetesError } from '../datastore/kubernetes';

export interface PodInfo { name: string; namespace: string; nodeName?: string; ips: string[]; uid?: string }

/** What the controller needs to know about the cluster's workloads. */
export interface PodInventory {
  /** Pods of a namespace by name (empty when the namespace does not exist). */
  pods(namespace: string): Promise<Map<string, PodInfo>>;
  /** Names of the Kubernetes Nodes (the authority on node deletion in a Kubernetes cluster). */
  nodes(): Promise<Set<string>>;
}

/** PodInventory over the API server (kubeconfig or in-cluster service account). */
export class KubePodInventory implements PodInventory {
  private readonly url: URL;
  private readonly agent: http.Agent;

  constructor(private readonly target: KubeTarget, private readonly timeoutMs = 10_000) {
    this.url = new URL(target.server);
    this.agent = this.url.protocol === 'https:'
      ? new https.Agent({ keepAlive: true, ca: target.ca, cert: target.cert, key: target.key, rejectUnauthorized: !target.insecureSkipTlsVerify })
      : new http.Agent({ keepAlive: true });
  }

  async pods(namespace: string): Promise<Map<string, PodInfo>> {
    const json = await this.get(`pods in namespace ${namespace}`, `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`);
    const out = new Map<string, PodInfo>();
    for (const o of Array.isArray(json?.items) ? json.items : []) {
      const name = o?.metadata?.name;
      if (typeof name !== 'string') continue;
      const ips: string[] = [];
      for (const p of Array.isArray(o?.status?.podIPs) ? o.status.podIPs : []) if (typeof p?.ip === 'string') ips.push(p.ip);
      if (typeof o?.status?.podIP === 'string' && !ips.includes(o.status.podIP)) ips.push(o.status.podIP);
      out.set(name, {
        name, namespace, ips,
        ...(typeof o?.spec?.nodeName === 'string' ? { nodeName: o.spec.nodeName } : {}),
        ...(typeof o?.metadata?.uid === 'string' ? { uid: o.metadata.uid } : {}),
      });
    }
    return out;
  }

  async nodes(): Promise<Set<string>> {
    const json = await this.get('nodes', '/api/v1/nodes');
    const out = new Set<string>();
    for (const o of Array.isArray(json?.items) ? json.items : []) if (typeof o?.metadata?.name === 'string') out.add(o.metadata.name);
    return out;
  }

  close(): void { this.agent.destroy(); }

  private get(what: string, path: string): Promise<any> {
    const mod = this.url.protocol === 'https:' ? https : http;
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json' };
    if (this.target.token) headers.authorization = `Bearer ${this.target.token}`;
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err: Error | undefined, v?: unknown) => {
        if (done) return;
        done = true; clearTimeout(timer);
        if (err) { req.destroy(); reject(err); } else resolve(v);
      };
      const req = mod.request({
        host: this.url.hostname.replace(/^\[|\]$/g, ''),
        port: this.url.port || (this.url.protocol === 'https:' ? 443 : 80),
        method: 'GET', path: this.url.pathname.replace(/\/$/, '') + path, headers, agent: this.agent,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => finish(new UnavailableError(`kubernetes list ${what}: ${e.message}`)));
        res.on('end', () => {
          let json: any = null;
          try { json = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { /* not JSON */ }
          if (res.statusCode === 200) return finish(undefined, json);
          finish(new KubernetesError(`kubernetes list ${what}: ${json?.message ?? `status ${res.statusCode}`}`, res.statusCode ?? 0, String(json?.reason ?? '')));
        });
      });
      const timer = setTimeout(() => finish(new UnavailableError(`kubernetes list ${what}: no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      req.on('error', (e: NodeJS.ErrnoException) => finish(new UnavailableError(`kubernetes list ${what}: ${e.code ?? e.message}`)));
      req.end();
    });
  }
}
