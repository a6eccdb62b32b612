package authserver

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpauth/mcpauth/internal/store"
	"github.com/mcpauth/mcpauth/internal/token"
	"github.com/mcpauth/mcpauth/oauth"
)

// registered is an RFC 7591 §3.2 response, success or error.
type registered struct {
	Status                  int         `json:"-"`
	Header                  http.Header `json:"-"`
	ClientID                string      `json:"client_id"`
	ClientIDIssuedAt        int64       `json:"client_id_issued_at"`
	ClientSecret            string      `json:"client_secret"`
	ClientName              string      `json:"client_name"`
	RedirectURIs            []string    `json:"redirect_uris"`
	GrantTypes              []string    `json:"grant_types"`
	ResponseTypes           []string    `json:"response_types"`
	TokenEndpointAuthMethod string      `json:"token_endpoint_auth_method"`
	Error                   string      `json:"error"`
	ErrorDescription        string      `json:"error_description"`
}

// registerRaw posts body to /register with contentType.
func (h *harness) registerRaw(contentType string, body []byte) registered {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url("/register"), bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	var reg registered
	reg.Status, reg.Header = h.send(req, &reg)
	return reg
}

// register posts metadata as JSON.
func (h *harness) register(metadata map[string]any) registered {
	h.t.Helper()
	b, err := json.Marshal(metadata)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.registerRaw("application/json", b)
}

// dcrMetadata is a valid registration of a public MCP client.
func dcrMetadata() map[string]any {
	return map[string]any{
		"client_name":      "DCR App",
		"redirect_uris":    []string{testRedirect},
		"grant_types":      []string{"authorization_code", "refresh_token"},
		"application_type": "native",
	}
}

func mustRegister(t *testing.T, reg registered) registered {
	t.Helper()
	if reg.Status != http.StatusCreated || reg.ClientID == "" {
		t.Fatalf("register: %d %s: %s", reg.Status, reg.Error, reg.ErrorDescription)
	}
	return reg
}

// TestRegister checks RFC 7591 registration and that
// registered clients work (and only as registered).
func TestRegister(t *testing.T) {
	h := newHarness(t, harnessConfig{dcr: true})
	b := h.newBrowser()
	ctx := context.Background()

	pub := mustRegister(t, h.register(dcrMetadata()))
	t.Run("I2 public client", func(t *testing.T) {
		want := registered{Status: http.StatusCreated, ClientID: pub.ClientID, ClientIDIssuedAt: h.clock.now().Unix(),
			ClientName: "DCR App", RedirectURIs: []string{testRedirect}, GrantTypes: []string{"authorization_code", "refresh_token"},
			ResponseTypes: []string{"code"}, TokenEndpointAuthMethod: "none"}
		if diff := cmp.Diff(want, pub, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Header" }, cmp.Ignore())); diff != "" {
			t.Errorf("registration (-want +got):\n%s", diff)
		}
		if pub.Header.Get("Cache-Control") != "no-store" || pub.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("headers: %v", pub.Header)
		}
	})
	t.Run("attack 14 registered client IDs never start with https://", func(t *testing.T) {
		if strings.HasPrefix(pub.ClientID, "https://") || strings.HasPrefix(pub.ClientID, "http://") || !strings.HasPrefix(pub.ClientID, dcrIDPrefix) {
			t.Errorf("client_id %q", pub.ClientID)
		}
	})
	t.Run("I6 consent marks the client self-asserted", func(t *testing.T) {
		b := b.in(t)
		q := authParams(pub.ClientID, newPKCE())
		cp := b.consentPage(b.login(b.authorize(q), testPassword))
		if !strings.Contains(cp.body, "self-asserted") || !strings.Contains(cp.body, pub.ClientID) {
			t.Errorf("consent page:\n%s", cp.body)
		}
	})
	t.Run("I2 public client flow with refresh", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		tr := b.flow(pub.ClientID, nil)
		mustTokens(t, h.refresh(pub.ClientID, tr.RefreshToken))
		rec, err := h.db.GetDCRClient(ctx, pub.ClientID)
		if err != nil || rec.LastUsedAt.IsZero() {
			t.Errorf("I5 first use not recorded: %+v %v", rec, err)
		}
	})
	t.Run("I3 registered redirect URIs only", func(t *testing.T) {
		q := authParams(pub.ClientID, newPKCE())
		q.Set("redirect_uri", testRedirectS)
		wantErrorPage(t, b.in(t).authorize(q), http.StatusBadRequest)
	})

	md := dcrMetadata()
	md["token_endpoint_auth_method"] = "client_secret_basic"
	md["redirect_uris"] = []string{testRedirectS}
	conf := mustRegister(t, h.register(md))
	t.Run("I2 confidential client gets a secret", func(t *testing.T) {
		h := h.in(t)
		if conf.ClientSecret == "" || conf.TokenEndpointAuthMethod != "client_secret_basic" {
			t.Fatalf("registration %+v", conf)
		}
		var raw map[string]any
		status, _ := h.postFormJSON("/register", md, &raw)
		if status != http.StatusCreated || raw["client_secret_expires_at"] != float64(0) {
			t.Errorf("client_secret_expires_at = %v (status %d), want 0", raw["client_secret_expires_at"], status)
		}
		rec, err := h.db.GetDCRClient(ctx, conf.ClientID)
		if err != nil || rec.SecretHash != token.Hash(conf.ClientSecret) || strings.Contains(string(rec.Metadata), conf.ClientSecret) {
			t.Errorf("stored %+v, %v: want only the secret's hash", rec, err)
		}
	})
	for _, tc := range []struct {
		name string
		auth func(form url.Values) func(*http.Request)
		ok   bool
	}{
		{"I2 client_secret_basic", func(url.Values) func(*http.Request) {
			return func(r *http.Request) {
				r.SetBasicAuth(url.QueryEscape(conf.ClientID), url.QueryEscape(conf.ClientSecret))
			}
		}, true},
		{"I2 client_secret_post", func(f url.Values) func(*http.Request) { f.Set("client_secret", conf.ClientSecret); return nil }, true},
		{"I2 wrong secret", func(f url.Values) func(*http.Request) { f.Set("client_secret", dcrSecretPrefix+"wrong"); return nil }, false},
		{"I2 no secret", func(url.Values) func(*http.Request) { return nil }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, b := h.in(t), b.in(t)
			p := newPKCE()
			q := authParams(conf.ClientID, p)
			q.Set("redirect_uri", testRedirectS)
			cb := b.authorizeCode(q)
			form := codeForm(conf.ClientID, cb.Get("code"), p)
			form.Set("redirect_uri", testRedirectS)
			tr := h.token(form, tc.auth(form))
			if tc.ok {
				mustTokens(t, tr)
			} else {
				wantError(t, tr, http.StatusUnauthorized, oauth.InvalidClient)
			}
		})
	}

	t.Run("I3 private_key_jwt client with jwks", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		key := newClientKey(t, "k1")
		m := dcrMetadata()
		m["client_name"] = "Key App"
		m["token_endpoint_auth_method"] = "private_key_jwt"
		m["jwks"] = jwks(t, key)
		reg := mustRegister(t, h.register(m))
		if reg.ClientSecret != "" || reg.TokenEndpointAuthMethod != "private_key_jwt" {
			t.Errorf("registration %+v", reg)
		}
		c, p := b.code(reg.ClientID)
		wantError(t, h.redeem(reg.ClientID, c, p), http.StatusUnauthorized, oauth.InvalidClient)
		mustTokens(t, h.token(withAssertion(codeForm(reg.ClientID, c, p), key.sign(t, h.assertionClaims(reg.ClientID))), nil))
	})

	invalid := []struct {
		name string
		edit func(m map[string]any)
		code oauth.ErrorCode
	}{
		{"I3 no redirect_uris", func(m map[string]any) { delete(m, "redirect_uris") }, oauth.InvalidRedirectURI},
		{"I3 javascript: redirect URI", func(m map[string]any) { m["redirect_uris"] = []string{"javascript:alert(1)"} }, oauth.InvalidRedirectURI},
		{"I3 http redirect URI on a public host", func(m map[string]any) { m["redirect_uris"] = []string{"http://evil.example/cb"} }, oauth.InvalidRedirectURI},
		{"I3 redirect URI with a fragment", func(m map[string]any) { m["redirect_uris"] = []string{testRedirectS + "#x"} }, oauth.InvalidRedirectURI},
		{"I3 wildcard redirect URI", func(m map[string]any) { m["redirect_uris"] = []string{"https://*.example.com/cb"} }, oauth.InvalidRedirectURI},
		{"I3 grant type implicit", func(m map[string]any) { m["grant_types"] = []string{"implicit"} }, oauth.InvalidClientMetadata},
		{"I3 grant type password", func(m map[string]any) { m["grant_types"] = []string{"authorization_code", "password"} }, oauth.InvalidClientMetadata},
		{"I3 response type token", func(m map[string]any) { m["response_types"] = []string{"token"} }, oauth.InvalidClientMetadata},
		{"I3 unknown auth method", func(m map[string]any) { m["token_endpoint_auth_method"] = "tls_client_auth" }, oauth.InvalidClientMetadata},
		{"I3 client_secret_jwt", func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_jwt" }, oauth.InvalidClientMetadata},
		{"I3 application_type other", func(m map[string]any) { m["application_type"] = "desktop" }, oauth.InvalidClientMetadata},
		{"I3 private key in jwks", func(m map[string]any) {
			m["token_endpoint_auth_method"] = "private_key_jwt"
			m["jwks"] = map[string]any{"keys": []map[string]any{{"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "d": "secret"}}}
		}, oauth.InvalidClientMetadata},
		{"I3 redirect_uris not an array", func(m map[string]any) { m["redirect_uris"] = testRedirect }, oauth.InvalidClientMetadata},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			m := dcrMetadata()
			tc.edit(m)
			reg := h.in(t).register(m)
			if reg.Status != http.StatusBadRequest || reg.Error != string(tc.code) || reg.ErrorDescription == "" || reg.ClientID != "" {
				t.Errorf("got %d %q (%s), want 400 %q", reg.Status, reg.Error, reg.ErrorDescription, tc.code)
			}
			if got := oauth.DescriptionText(reg.ErrorDescription); got != reg.ErrorDescription {
				t.Errorf("error_description %q has characters outside RFC 6749 section 5.2 (want %q)", reg.ErrorDescription, got)
			}
		})
	}
	bodies := []struct {
		name, contentType, body string
		status                  int
	}{
		{"I2 not JSON", "application/json", "<html>", http.StatusBadRequest},
		{"I2 JSON array", "application/json", "[]", http.StatusBadRequest},
		{"I2 duplicate member", "application/json", `{"redirect_uris":["https://evil.example/cb"],"redirect_uris":["` + testRedirect + `"]}`, http.StatusBadRequest},
		{"I2 form instead of JSON", "application/x-www-form-urlencoded", "redirect_uris=" + testRedirect, http.StatusBadRequest},
		{"I5 body over 16 KiB", "application/json", `{"client_name":"` + strings.Repeat("a", dcrMaxBody) + `"}`, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range bodies {
		t.Run(tc.name, func(t *testing.T) {
			reg := h.in(t).registerRaw(tc.contentType, []byte(tc.body))
			if reg.Status != tc.status || reg.Error != string(oauth.InvalidClientMetadata) {
				t.Errorf("got %d %q (%s), want %d invalid_client_metadata", reg.Status, reg.Error, reg.ErrorDescription, tc.status)
			}
		})
	}
	t.Run("I2 client-chosen client_id and secret are ignored", func(t *testing.T) {
		m := dcrMetadata()
		m["client_id"] = "https://victim.example/client.json"
		m["client_secret"] = "chosen"
		m["client_name"] = "Chooser"
		reg := mustRegister(t, h.in(t).register(m))
		if reg.ClientID == m["client_id"] || reg.ClientSecret != "" {
			t.Errorf("registration %+v", reg)
		}
	})
	t.Run("I5 identical public registration from the same source is deduplicated", func(t *testing.T) {
		h := h.in(t)
		if again := mustRegister(t, h.register(dcrMetadata())); again.ClientID != pub.ClientID {
			t.Errorf("client_id %q, want the earlier %q", again.ClientID, pub.ClientID)
		}
		m := dcrMetadata()
		m["client_name"] = "Another App"
		if other := mustRegister(t, h.register(m)); other.ClientID == pub.ClientID {
			t.Errorf("different metadata got the same client")
		}
		if again := mustRegister(t, h.register(md)); again.ClientID == conf.ClientID || again.ClientSecret == "" {
			t.Errorf("a confidential registration was deduplicated: %+v", again)
		}
	})
	t.Run("attack 14 an https:// client_id is never a registered client", func(t *testing.T) {
		h := h.in(t)
		id := h.docs.url("/not-published.json")
		rec := store.DCRClient{ClientID: id, Metadata: []byte(`{"redirect_uris":["` + testRedirect + `"],"grant_types":["authorization_code"],"token_endpoint_auth_method":"none"}`),
			CreatedAt: h.clock.now(), ExpiresAt: h.clock.now().Add(time.Hour)}
		if err := h.db.CreateDCRClient(ctx, rec); err != nil {
			t.Fatal(err)
		}
		wantErrorPage(t, b.in(t).authorize(authParams(id, newPKCE())), http.StatusBadRequest)
	})
	t.Run("I1 registration_endpoint advertised", func(t *testing.T) {
		h := h.in(t)
		m, _ := h.getMetadata(h.url("/.well-known/oauth-authorization-server"))
		if m.RegistrationEndpoint != h.issuer+"/register" {
			t.Errorf("registration_endpoint = %q", m.RegistrationEndpoint)
		}
	})
}

// postFormJSON posts v as JSON and decodes the answer into out.
func (h *harness) postFormJSON(path string, v any, out any) (int, http.Header) {
	h.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		h.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, h.url(path), bytes.NewReader(b))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return h.send(req, out)
}

// TestRegisterLimits checks the registration budgets and expiry (RFC 7591 §5).
func TestRegisterLimits(t *testing.T) {
	h := newHarness(t, harnessConfig{dcr: true})
	ctx := context.Background()
	h.as.dcr = dcrLimits{perAddress: 2, global: 4, maxClients: 4}
	name := func(i int) map[string]any {
		m := dcrMetadata()
		m["client_name"] = "App " + string(rune('A'+i))
		return m
	}
	unused := mustRegister(t, h.register(name(0)))
	used := mustRegister(t, h.register(name(1)))
	b := h.newBrowser()
	b.flow(used.ClientID, nil)

	t.Run("I5 per-address budget", func(t *testing.T) {
		reg := h.in(t).register(name(2))
		if reg.Status != http.StatusTooManyRequests || reg.Header.Get("Retry-After") == "" {
			t.Errorf("third registration from one address: %d %q", reg.Status, reg.Error)
		}
	})
	t.Run("I5 global budget", func(t *testing.T) { // refused attempts count too
		h := h.in(t)
		h.as.dcr.perAddress = 100
		if reg := h.register(name(3)); reg.Status != http.StatusCreated {
			t.Fatalf("register: %d %s", reg.Status, reg.Error)
		}
		if reg := h.register(name(4)); reg.Status != http.StatusTooManyRequests {
			t.Errorf("registration over the global budget: %d %q", reg.Status, reg.Error)
		}
	})
	t.Run("I5 stored clients cap", func(t *testing.T) {
		h := h.in(t)
		h.clock.advance(dcrWindow) // a new rate window
		h.as.dcr.maxClients = 3
		if reg := h.register(name(5)); reg.Status != http.StatusServiceUnavailable {
			t.Errorf("registration over the cap: %d %q", reg.Status, reg.Error)
		}
	})
	t.Run("I5 unused registrations expire, used ones stay", func(t *testing.T) {
		h, b := h.in(t), b.in(t)
		h.clock.advance(dcrUnusedExpiry)
		wantErrorPage(t, b.authorize(authParams(unused.ClientID, newPKCE())), http.StatusBadRequest)
		b.flow(used.ClientID, nil) // signs in again: the session has expired too
		if n, err := h.db.DeleteExpired(ctx, h.clock.now()); err != nil || n == 0 {
			t.Errorf("DeleteExpired: %d, %v", n, err)
		}
		if _, err := h.db.GetDCRClient(ctx, used.ClientID); err != nil {
			t.Errorf("used registration collected: %v", err)
		}
	})
}

// TestRegisterDisabled: without EnableDCR there is no registration endpoint
// and registered client IDs are unknown (RFC 7591 §3,
// MCP 2025-11-25 Authorization §Dynamic Client Registration, RFC 8414 §2,
// CIMD §6).
func TestRegisterDisabled(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	if reg := h.register(dcrMetadata()); reg.Status != http.StatusNotFound && reg.Status != http.StatusMethodNotAllowed {
		t.Errorf("POST /register without DCR: %d", reg.Status)
	}
}
