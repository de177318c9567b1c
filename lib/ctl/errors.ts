// brindlectl's errors: a failed command is one line on stderr and an exit code.

/** A command failed; `exitCode` is what the process exits with (2 for bad usage). */
export class CtlError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'CtlError';
  }
}

/** Bad command line: unknown flag, missing argument. Exit code 2. */
export class UsageError extends CtlError {
  constructor(message: string) { super(message, 2); this.name = 'UsageError'; }
}

/** A resource document failed its schema; `doc` names the document, `field` the path in it. */
export class SchemaError extends CtlError {
  constructor(readonly doc: string, readonly field: string, readonly reason: string) {
    super(`${doc}: ${field ? `${field}: ` : ''}${reason}`);
    this.name = 'SchemaError';
  }
}
