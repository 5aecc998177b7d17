/**
 * Node 20's built-in fetch appends its own Content-Length to one the caller set, giving "N, N".
 * Its bundled undici tolerates that; the undici 7 package the relay loads for origin fetches
 * installs itself as the global dispatcher on import and rejects it ("invalid content-length
 * header"). @achingbrain/nat-port-mapper sets Content-Length on every SOAP call, so every UPnP
 * mapping failed inside the relay. This drops a caller-set Content-Length on string bodies, which
 * fetch computes itself anyway. Installed once, only when port mapping is used.
 */
let installed = false;

export function stripDuplicateContentLength(init: RequestInit | undefined): RequestInit | undefined {
  if (init?.headers === undefined || typeof init.body !== 'string') return init;
  const headers = new Headers(init.headers);
  if (!headers.has('content-length')) return init;
  headers.delete('content-length');
  return { ...init, headers };
}

export function installFetchContentLengthFix(): void {
  if (installed) return;
  installed = true;
  const original = globalThis.fetch;
  globalThis.fetch = (input, init) => original(input, stripDuplicateContentLength(init));
}
