// One HTTP exchange for the etcd and kubernetes backends: the whole answer within a deadline,
// settled once, with the keep-alive reuse race retried.
import type * as http from 'node:http';
import type * as https from 'node:https';
import { TlsError, UnavailableError } from './types';

// OpenSSL's X509 verification codes and Node's TLS/SSL error codes.
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|INVALID_CA|HOSTNAME_MISMATCH|EPROTO$)/;

/** The TlsError for a request error that is a failed TLS handshake with `server`, else undefined. */
export function tlsError(what: string, server: string, err: NodeJS.ErrnoException): TlsError | undefined {
  const code = String(err.code ?? '');
  if (!TLS_CODE.test(code) && (err as { library?: string }).library !== 'SSL routines') return undefined;
  return new TlsError(`${what}: tls with ${server}: ${err.message} (${code || 'ssl'})`, server, code || 'ssl');
}

export interface Exchange { status: number; text: string }

/**
 * Sends one request and reads the whole answer (any status) by `deadline` (epoch ms). A
 * request error becomes `requestError(err)` when that returns one, else UnavailableError;
 * a timeout or a broken answer is UnavailableError. Messages start with `what`.
 */
export function exchange(mod: typeof http | typeof https, opts: https.RequestOptions, payload: string | undefined,
  what: string, deadline: number, timeoutMs: number,
  requestError: (err: NodeJS.ErrnoException) => Error | undefined = () => undefined): Promise<Exchange> {
  return new Promise<Exchange>((resolve, reject) => {
    const attempt = (retried: boolean): void => {
      const left = deadline - Date.now();
      if (left <= 0) return reject(new UnavailableError(`${what}: deadline exceeded`));
      let settled = false;
      const req = mod.request(opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => fail(new UnavailableError(`${what}: ${err.message}`)));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
      });
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(new UnavailableError(`${what}: no answer within ${timeoutMs} ms`)), left);
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (settled) return;
        if (!retried && (req as { reusedSocket?: boolean }).reusedSocket && err.code === 'ECONNRESET') {
          // The server closed an idle keep-alive socket as we reused it: the request never arrived.
          settled = true;
          clearTimeout(timer);
          attempt(true);
          return;
        }
        fail(requestError(err) ?? new UnavailableError(`${what}: ${err.code ?? err.message}`));
      });
      req.end(payload);
    };
    attempt(false);
  });
}
