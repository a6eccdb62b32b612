// An OAuthClientProvider for the TypeScript MCP SDK that keeps everything in
// memory and sends "the user" through mcpauth's pages with a Browser.

import { randomUUID } from 'node:crypto';

/**
 * TestProvider implements the SDK's OAuthClientProvider. Its
 * redirectToAuthorization drives the real login and consent forms and keeps
 * the code from the callback for the test to pass to transport.finishAuth.
 */
export class TestProvider {
  /**
   * @param {object} o
   * @param {string} o.redirectUrl loopback callback URL
   * @param {object} o.clientMetadata the client's metadata (the CIMD document's content, or what DCR registers)
   * @param {string} [o.clientMetadataUrl] the CIMD client_id URL; without it the SDK registers (DCR)
   * @param {import('./browser.js').Browser} o.browser
   * @param {string} o.issuer expected in the callback's iss (RFC 9207)
   * @param {string} o.username
   * @param {string} o.password
   */
  constructor(o) {
    this.o = o;
    if (o.clientMetadataUrl) this.clientMetadataUrl = o.clientMetadataUrl;
    this._client = undefined;
    this._tokens = undefined;
    this._verifier = undefined;
    this._state = undefined;
    /** savedTokens lists every token response the SDK saved, in order. */
    this.savedTokens = [];
    /** authorizationURLs lists every authorization request the SDK made. */
    this.authorizationURLs = [];
    this.pendingCode = undefined;
    this.stepUpPending = false;
  }

  get redirectUrl() {
    return this.o.redirectUrl;
  }

  get clientMetadata() {
    return this.o.clientMetadata;
  }

  state() {
    this._state = randomUUID();
    return this._state;
  }

  clientInformation() {
    return this._client;
  }

  saveClientInformation(info) {
    this._client = info;
  }

  tokens() {
    // SDK 1.32.2 answers 403 insufficient_scope by refreshing first when it
    // holds a refresh token; a refresh cannot widen the scope (RFC 6749 §6,
    // OAuth 2.1 §4.3.1), so the retry gets the same 403 and the SDK gives up
    // (typescript-sdk issue 2255; later SDKs skip the refresh when the scope
    // widens). Like that fix, this provider offers no refresh token while a
    // step-up is pending, so the SDK goes to the authorization endpoint.
    if (this.stepUpPending && this._tokens) {
      const { refresh_token: _unused, ...rest } = this._tokens;
      return rest;
    }
    return this._tokens;
  }

  saveTokens(tokens) {
    this.savedTokens.push(tokens);
    this._tokens = tokens;
    this.stepUpPending = false;
  }

  /** forgetAccessToken keeps only the refresh token, as after the access token expired. */
  forgetAccessToken() {
    this._tokens = { ...this._tokens, access_token: 'expired' };
  }

  async redirectToAuthorization(authorizationUrl) {
    const url = new URL(authorizationUrl);
    this.authorizationURLs.push(url);
    const cb = await this.o.browser.authorize(url, {
      redirectUri: this.o.redirectUrl,
      username: this.o.username,
      password: this.o.password,
    });
    if (cb.error) throw new Error(`authorization failed: ${cb.error}: ${cb.error_description}`);
    if (cb.state !== this._state) throw new Error(`callback state ${cb.state} is not the request's ${this._state}`);
    if (cb.iss !== this.o.issuer) throw new Error(`callback iss ${cb.iss}, want ${this.o.issuer} (RFC 9207)`);
    this.pendingCode = cb.code;
  }

  /** takeCode returns the code of the last authorization, once. */
  takeCode() {
    const c = this.pendingCode;
    if (!c) throw new Error('no authorization code: the SDK did not send the user to the authorization endpoint');
    this.pendingCode = undefined;
    return c;
  }

  saveCodeVerifier(v) {
    this._verifier = v;
  }

  codeVerifier() {
    if (!this._verifier) throw new Error('no code verifier saved');
    return this._verifier;
  }

  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'client') this._client = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._verifier = undefined;
  }
}

/**
 * recordingFetch wraps fetch for the SDK transport: it remembers each
 * request's method, URL, status and form body, and tells the provider when
 * the MCP server asks for a step-up (403 insufficient_scope).
 */
export function recordingFetch(provider, log) {
  return async (url, init = {}) => {
    const res = await fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(15_000) });
    const body = init.body instanceof URLSearchParams ? init.body.toString() : typeof init.body === 'string' ? init.body : '';
    log.push({ method: init.method ?? 'GET', url: String(url), status: res.status, body });
    if (res.status === 403 && /insufficient_scope/.test(res.headers.get('www-authenticate') ?? '')) {
      provider.stepUpPending = true;
    }
    return res;
  };
}
