import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { ErrorCode, GRANT_USER_BYTES, RelaycastError, concatBytes, utf8Encode } from '@relaycast/protocol';
import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { GRANT_JWT_SECRET_ENV, MIN_GRANT_JWT_SECRET_BYTES, USER_TAG_DOMAIN } from '../constants.js';
import type { AuthorizeGrant } from './settler-options.js';

/**
 * How the settler decides who gets a grant (the bin's --grant-auth):
 * - `jwt`: the platform's own user token, `Authorization: Bearer <JWT>`, verified with an HS256
 *   secret or a JWKS; `aud` must name this settler, `sub` (the user) and `exp` are required.
 * - `open`: every caller gets a grant, each its own "user". Development only: the local network
 *   uses it, /v1/info says so and the settler warns at start.
 */
export type GrantAuthPolicy =
  | {
      mode: 'jwt';
      /** Expected `aud`. Required. */
      audience: string;
      /** HS256 secret (at least 32 bytes). Exactly one of `secret` and `jwks`. */
      secret?: Uint8Array;
      /** Public keys (RS256, PS256, ES256, EdDSA). Exactly one of `secret` and `jwks`. */
      jwks?: JSONWebKeySet;
      /** Expected `iss`, when the platform sets one. Default: not checked. */
      issuer?: string;
      /** Allowed clock skew on `exp`/`nbf`, seconds. Default: 30. */
      clockToleranceSec?: number;
    }
  | { mode: 'open' };

const ASYMMETRIC_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'];
const MAX_TOKEN_CHARS = 8_192;

function unauthenticated(message: string, cause?: unknown): RelaycastError {
  return new RelaycastError(ErrorCode.GRANT_UNAUTHENTICATED, message, cause === undefined ? undefined : { cause });
}

/** The 16-byte user tag a grant carries for a platform user id: never the id itself. */
export function userTag(payer: Uint8Array, user: string): Uint8Array {
  const digest = createHash('sha256')
    .update(concatBytes([utf8Encode(USER_TAG_DOMAIN), payer, utf8Encode(user)]))
    .digest();
  return new Uint8Array(digest.subarray(0, GRANT_USER_BYTES));
}

/** The bin's jwt policy from its flags: secret from the environment, or a JWKS file. */
export async function jwtPolicyFromFlags(f: {
  audience?: string | undefined;
  jwksFile?: string | undefined;
  issuer?: string | undefined;
  env: NodeJS.ProcessEnv;
}): Promise<GrantAuthPolicy> {
  if (f.audience === undefined || f.audience === '') throw new RelaycastError(ErrorCode.CONFIG_INVALID, '--grant-auth jwt needs --grant-jwt-audience');
  const secret = f.env[GRANT_JWT_SECRET_ENV];
  if ((f.jwksFile === undefined) === (secret === undefined || secret === '')) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, `--grant-auth jwt needs exactly one key: ${GRANT_JWT_SECRET_ENV} (HS256 secret) or --grant-jwks FILE`);
  }
  if (f.jwksFile !== undefined) {
    let jwks: JSONWebKeySet;
    try {
      jwks = JSON.parse(await readFile(f.jwksFile, 'utf8')) as JSONWebKeySet;
    } catch (err) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, `cannot read the JWKS file ${f.jwksFile}`, { cause: err });
    }
    return { mode: 'jwt', audience: f.audience, jwks, ...(f.issuer !== undefined ? { issuer: f.issuer } : {}) };
  }
  return { mode: 'jwt', audience: f.audience, secret: utf8Encode(secret!), ...(f.issuer !== undefined ? { issuer: f.issuer } : {}) };
}

/** Turns a policy into the hook the grant route calls. */
export function authorizeFor(policy: GrantAuthPolicy): AuthorizeGrant {
  if (policy.mode === 'open') return () => Promise.resolve({});
  if (typeof policy.audience !== 'string' || policy.audience === '') throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'grantAuth jwt needs an audience');
  let key: Uint8Array | JWTVerifyGetKey;
  let algorithms: string[];
  if (policy.secret !== undefined && policy.jwks === undefined) {
    if (policy.secret.byteLength < MIN_GRANT_JWT_SECRET_BYTES) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, `the HS256 grant secret must be at least ${MIN_GRANT_JWT_SECRET_BYTES} bytes`);
    }
    key = policy.secret;
    algorithms = ['HS256'];
  } else if (policy.jwks !== undefined && policy.secret === undefined) {
    try {
      key = createLocalJWKSet(policy.jwks);
    } catch (err) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'the grant JWKS is not a valid key set', { cause: err });
    }
    algorithms = ASYMMETRIC_ALGS;
  } else {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'grantAuth jwt needs exactly one of secret and jwks');
  }
  const verifyOptions = {
    audience: policy.audience,
    algorithms,
    requiredClaims: ['sub', 'exp'],
    clockTolerance: policy.clockToleranceSec ?? 30,
    ...(policy.issuer !== undefined ? { issuer: policy.issuer } : {}),
  };
  return async (req: IncomingMessage) => {
    const header = req.headers.authorization;
    const m = typeof header === 'string' ? /^Bearer ([A-Za-z0-9_.-]+)$/.exec(header) : null;
    if (m === null) throw unauthenticated('POST /v1/grants needs Authorization: Bearer <the platform’s user token>');
    if (m[1]!.length > MAX_TOKEN_CHARS) throw unauthenticated('token too long');
    try {
      const { payload } = typeof key === 'function' ? await jwtVerify(m[1]!, key, verifyOptions) : await jwtVerify(m[1]!, key, verifyOptions);
      if (typeof payload.sub !== 'string' || payload.sub === '') throw unauthenticated('token has no sub');
      return { user: payload.sub, subject: payload.sub };
    } catch (err) {
      if (err instanceof RelaycastError) throw err;
      if (err instanceof joseErrors.JOSEError) throw unauthenticated(`token refused (${err.code})`, err);
      throw err;
    }
  };
}
