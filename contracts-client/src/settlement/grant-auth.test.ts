import type { IncomingMessage } from 'node:http';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { authorizeFor, userTag } from './grant-auth.js';

const req = (authorization?: string): IncomingMessage => ({ headers: authorization === undefined ? {} : { authorization } }) as IncomingMessage;
const refused = expect.objectContaining({ code: 'RC_ERR_GRANT_UNAUTHENTICATED' });

describe('grant auth', () => {
  it('jwt with a JWKS: the platform’s ES256 tokens pass; another key, an HS256 token signed with the public key, no sub: refused', async () => {
    const platform = await generateKeyPair('ES256');
    const other = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(platform.publicKey)), kid: 'k1', alg: 'ES256' };
    const authorize = authorizeFor({ mode: 'jwt', audience: 'settler', issuer: 'https://platform.example', jwks: { keys: [jwk] } });
    const token = (key: CryptoKey | Uint8Array, claims: Record<string, unknown> = { sub: 'u-1' }, alg = 'ES256') =>
      new SignJWT(claims).setProtectedHeader({ alg, kid: 'k1' }).setAudience('settler').setIssuer('https://platform.example').setExpirationTime('5m').sign(key);
    await expect(authorize(req(`Bearer ${await token(platform.privateKey)}`))).resolves.toMatchObject({ user: 'u-1' });
    await expect(authorize(req(`Bearer ${await token(other.privateKey)}`))).rejects.toThrow(refused);
    await expect(authorize(req(`Bearer ${await token(platform.privateKey, {})}`))).rejects.toThrow(refused);
    await expect(authorize(req(`Bearer ${await token(new TextEncoder().encode(JSON.stringify(jwk)), { sub: 'u-1' }, 'HS256')}`))).rejects.toThrow(refused);
    await expect(authorize(req())).rejects.toThrow(refused);
    await expect(authorize(req('Basic dXNlcjpwYXNz'))).rejects.toThrow(refused);
  });

  it('refuses configurations that would accept anything', () => {
    expect(() => authorizeFor({ mode: 'jwt', audience: 'settler', secret: new TextEncoder().encode('short') })).toThrow(
      expect.objectContaining({ code: 'RC_ERR_CONFIG_INVALID' }),
    );
    expect(() => authorizeFor({ mode: 'jwt', audience: '', secret: new Uint8Array(32) })).toThrow(expect.objectContaining({ code: 'RC_ERR_CONFIG_INVALID' }));
    expect(() => authorizeFor({ mode: 'jwt', audience: 'settler' })).toThrow(expect.objectContaining({ code: 'RC_ERR_CONFIG_INVALID' }));
  });

  it('open grants everyone, naming no user; user tags are stable per (payer, user) and never the id', async () => {
    await expect(authorizeFor({ mode: 'open' })(req())).resolves.toEqual({});
    const payer = new Uint8Array(32).fill(7);
    expect(userTag(payer, 'alice')).toEqual(userTag(payer, 'alice'));
    expect(userTag(payer, 'alice')).not.toEqual(userTag(payer, 'bob'));
    expect(userTag(new Uint8Array(32).fill(8), 'alice')).not.toEqual(userTag(payer, 'alice'));
    expect(userTag(payer, 'alice')).toHaveLength(16);
  });
});
