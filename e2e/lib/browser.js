// A minimal user agent for mcpauth's login and consent pages: it follows
// redirects itself, keeps cookies, and fills the forms by their field names
// (username, password, decision, and the hidden request and csrf), the way a
// person with a browser would.

const requestTimeout = 10_000;

/** decodeHTML undoes the escaping html/template applies to attribute values. */
export function decodeHTML(s) {
  return s
    .replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_, n) => String.fromCodePoint(parseInt(n, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** textOf is the visible text of an HTML page, for assertions on what a person reads. */
export function textOf(html) {
  return decodeHTML(html.replace(/<style[\s\S]*?<\/style>/g, '').replace(/<[^>]+>/g, ' ')).replace(/\s+/g, ' ').trim();
}

/** parseForm returns the action and hidden fields of the page's POST form. */
export function parseForm(html) {
  const form = html.match(/<form method="post" action="([^"]*)">([\s\S]*?)<\/form>/);
  if (!form) return null;
  const fields = {};
  for (const m of form[2].matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[decodeHTML(m[1])] = decodeHTML(m[2]);
  }
  return { action: decodeHTML(form[1]), fields, body: form[2] };
}

/** Browser is one user's browser: its cookie jar and the pages it saw. */
export class Browser {
  constructor() {
    this.cookies = new Map();
    /** pages lists {kind: 'login'|'consent', url, html} in the order shown. */
    this.pages = [];
  }

  cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** request sends one request without following redirects. */
  async request(url, { method = 'GET', form } = {}) {
    const headers = {};
    if (this.cookies.size > 0) headers.cookie = this.cookieHeader();
    let body;
    if (form) {
      body = new URLSearchParams(form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(requestTimeout) });
    for (const sc of res.headers.getSetCookie()) {
      const [pair, ...attrs] = sc.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*(0|-\d+)\s*$/i.test(a));
      if (value === '' || expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  /**
   * authorize opens an authorization URL and goes through the login and
   * consent pages until mcpauth redirects to redirectUri, whose query it
   * returns (code, state, iss, or error). decision is "approve" or "deny".
   * With stopAtConsent it returns {consentURL} when the consent page shows.
   */
  async authorize(authorizationURL, { redirectUri, username, password, decision = 'approve', stopAtConsent = false }) {
    let url = new URL(authorizationURL);
    let res = await this.request(url);
    for (let step = 0; step < 12; step++) {
      if ([301, 302, 303, 307, 308].includes(res.status)) {
        const loc = new URL(res.headers.get('location'), url);
        await res.arrayBuffer();
        if (loc.href.startsWith(redirectUri)) {
          return Object.fromEntries(loc.searchParams);
        }
        if (loc.origin !== url.origin) {
          throw new Error(`redirected off the authorization server to ${loc.href}`);
        }
        url = loc;
        res = await this.request(url);
        continue;
      }
      const html = await res.text();
      const form = res.status === 200 || res.status === 401 ? parseForm(html) : null;
      if (!form) {
        throw new Error(`unexpected ${res.status} at ${url.pathname}: ${textOf(html).slice(0, 600)}`);
      }
      const target = new URL(form.action, url);
      if (/name="password"/.test(form.body)) {
        this.pages.push({ kind: 'login', url: url.href, html, status: res.status });
        if (res.status !== 200) throw new Error(`login failed: ${textOf(html).slice(0, 300)}`);
        res = await this.request(target, { method: 'POST', form: { ...form.fields, username, password } });
      } else if (/name="decision"/.test(form.body)) {
        this.pages.push({ kind: 'consent', url: url.href, html, status: res.status });
        if (stopAtConsent) return { consentURL: url.href };
        res = await this.request(target, { method: 'POST', form: { ...form.fields, decision } });
      } else {
        throw new Error(`page at ${url.pathname} has a form that is neither login nor consent`);
      }
      url = target;
    }
    throw new Error('too many steps before the redirect to the client');
  }
}
