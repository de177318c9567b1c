// CNI errors: the spec's error codes (1–99 reserved by the spec, 100+ ours) and the one
// error class the plugin skeleton turns into the spec's error JSON.

export const ERR_INCOMPATIBLE_VERSION = 1;
export const ERR_UNSUPPORTED_FIELD = 2;
export const ERR_UNKNOWN_CONTAINER = 3;
export const ERR_INVALID_ENV = 4;
export const ERR_IO = 5;
export const ERR_DECODE = 6;
export const ERR_INVALID_CONFIG = 7;
export const ERR_TRY_AGAIN = 11;
export const ERR_PLUGIN_NOT_AVAILABLE = 50;
export const ERR_LIMITED_CONNECTIVITY = 51;
export const ERR_NO_CONNECTIVITY = 52;
// brindle's own codes
export const ERR_INTERNAL = 100;
export const ERR_DATAPLANE = 101;
export const ERR_CHECK_FAILED = 102;
export const ERR_IPAM = 110;
export const ERR_POOL_EXHAUSTED = 120;
export const ERR_BLOCK_LIMIT = 121;
export const ERR_NO_POOL_FOR_NODE = 122;
export const ERR_CAS_RETRIES = 123;
export const ERR_IP_UNAVAILABLE = 124;

/** An error with a CNI code; written on stdout as {cniVersion, code, msg, details}. */
export class CniError extends Error {
  constructor(readonly code: number, readonly msg: string, readonly details?: string) {
    super(msg);
    this.name = 'CniError';
  }

  /** The spec's error object for the given result version. */
  toJSON(cniVersion: string): Record<string, unknown> {
    const out: Record<string, unknown> = { cniVersion, code: this.code, msg: this.msg };
    if (this.details) out.details = this.details;
    return out;
  }
}
