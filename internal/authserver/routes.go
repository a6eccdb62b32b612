package authserver

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/mcpauth/mcpauth/internal/accesslog"
	"github.com/mcpauth/mcpauth/oauth"
)

// routes is the whole HTTP surface of the authorization server.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	b := s.base // every endpoint lives under the issuer's path (RFC 8414 §2)
	// Discovery (RFC 8414, OIDC discovery), CORS allowed (RFC 9700 §2.6).
	for _, p := range s.metadataPaths() {
		mux.Handle("GET "+p, cors(http.HandlerFunc(s.handleMetadata)))
		mux.Handle("OPTIONS "+p, cors(nil))
	}
	mux.Handle("GET "+b+"/jwks", cors(http.HandlerFunc(s.handleJWKS)))
	mux.Handle("OPTIONS "+b+"/jwks", cors(nil))

	// Browser-facing: never CORS, never framed (RFC 9700 §2.6, §4.16,
	// RFC 6749 §10.12).
	mux.Handle("GET "+b+"/authorize", page(http.HandlerFunc(s.handleAuthorize)))
	mux.Handle("POST "+b+"/authorize", page(http.HandlerFunc(s.handleAuthorize)))
	mux.Handle("GET "+b+"/login", page(http.HandlerFunc(s.handleLoginPage)))
	mux.Handle("POST "+b+"/login", page(http.HandlerFunc(s.handleLogin)))
	mux.Handle("GET "+b+"/consent", page(http.HandlerFunc(s.handleConsentPage)))
	mux.Handle("POST "+b+"/consent", page(http.HandlerFunc(s.handleConsent)))
	mux.Handle("GET "+b+"/account", page(http.HandlerFunc(s.handleAccount)))
	mux.Handle("POST "+b+"/account/revoke", page(http.HandlerFunc(s.handleAccountRevoke)))
	mux.Handle("POST "+b+"/logout", page(http.HandlerFunc(s.handleLogout)))
	mux.Handle("GET "+b+"/logo", http.HandlerFunc(s.handleLogo))

	// Back-channel endpoints, CORS allowed for browser-based MCP clients
	// (RFC 9700 §2.6). Other methods get an OAuth error in JSON, which such
	// clients can read.
	notPost := http.HandlerFunc(s.handleNotPost)
	mux.Handle("POST "+b+"/token", cors(http.HandlerFunc(s.handleToken)))
	mux.Handle("OPTIONS "+b+"/token", cors(nil))
	mux.Handle(b+"/token", cors(notPost))
	mux.Handle("POST "+b+"/revoke", cors(http.HandlerFunc(s.handleRevoke)))
	mux.Handle("OPTIONS "+b+"/revoke", cors(nil))
	mux.Handle(b+"/revoke", cors(notPost))
	mux.Handle("POST "+b+"/introspect", http.HandlerFunc(s.handleIntrospect))
	mux.Handle(b+"/introspect", notPost)
	if s.enableDCR {
		mux.Handle("POST "+b+"/register", cors(http.HandlerFunc(s.handleRegister)))
		mux.Handle("OPTIONS "+b+"/register", cors(nil))
		mux.Handle(b+"/register", cors(notPost))
	}
	return accesslog.WithID(s.traced(s.observed(mux)))
}

// handleNotPost answers a back-channel endpoint called with a method other
// than POST.
func (s *Server) handleNotPost(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "POST")
	s.writeJSONErrorStatus(w, r, http.StatusMethodNotAllowed,
		oauth.NewError(oauth.InvalidRequest, "This endpoint takes POST with the parameters in the body, not %s.", truncate(r.Method, 20)))
}

// cors allows any origin without credentials: these endpoints authenticate
// with parameters, never cookies. A nil handler answers preflights only.
func cors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, MCP-Protocol-Version")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Access-Control-Expose-Headers", "WWW-Authenticate")
		h.ServeHTTP(w, r)
	})
}

// pageCSP is the Content-Security-Policy of our pages. Forms may only be
// sent to us, plus formTarget: browsers apply form-action to the redirects
// that follow a form submission, so a page whose form ends in a redirect to
// the client names the client's redirect URI origin.
func pageCSP(formTarget string) string {
	fa := "'self'"
	if formTarget != "" {
		fa += " " + formTarget
	}
	return "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action " + fa + "; frame-ancestors 'none'; base-uri 'none'"
}

// setFormTarget allows the origin of redirectURI (or its private-use
// scheme) as a form-action target of the page about to be rendered.
func setFormTarget(w http.ResponseWriter, redirectURI string) {
	u, err := url.Parse(redirectURI)
	if err != nil || u.Scheme == "" {
		return
	}
	src := u.Scheme + ":"
	if u.Host != "" {
		src = u.Scheme + "://" + u.Host
	}
	for _, c := range src {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-+:/[]", c)) {
			return // never let a redirect URI inject a directive
		}
	}
	w.Header().Set("Content-Security-Policy", pageCSP(src))
}

// page sets the headers of every browser-facing page: no framing
// (RFC 9700 §4.16, RFC 6749 §10.12), no caching, no referrer leaking codes or
// request ids, a strict CSP.
func page(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", pageCSP(""))
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		if r.Method == http.MethodHead {
			// The GET patterns also match HEAD. A page's GET can act (a
			// remembered consent issues a code), and a HEAD must never.
			hd.Set("Allow", "GET, POST")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		h.ServeHTTP(w, r)
	})
}

// requestID is the request's id (X-Request-Id), set by accesslog.
func requestID(r *http.Request) string {
	return accesslog.RequestID(r.Context())
}
