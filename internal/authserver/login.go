package authserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/internal/accesslog"
	"github.com/mcpauth/mcpauth/internal/store"
	"github.com/mcpauth/mcpauth/internal/token"
	"github.com/mcpauth/mcpauth/oauth"
)

// Login rate limits (per window). Attempts at one user name from one
// address are few, so that guessing from one host is slow. Attempts at one
// user name from anywhere have a higher cap, which bounds guessing from many
// hosts; keeping the per-name limit per address means one host cannot lock
// a user out just by sending wrong passwords in the user's name.
const (
	loginWindow        = 15 * time.Minute
	loginPerUserAtAddr = 10
	loginPerUser       = 100
	loginPerAddress    = 100
)

func (s *Server) sessionCookieName() string {
	if s.secure {
		return "__Host-mcpauth_session" // MCP Security Best Practices §Confused Deputy Problem: __Host- prefix over https
	}
	return "mcpauth_session"
}

// currentSession returns the signed-in session and the raw cookie value.
func (s *Server) currentSession(r *http.Request) (*store.Session, string) {
	ck, err := r.Cookie(s.sessionCookieName())
	if err != nil || ck.Value == "" || len(ck.Value) > 100 {
		return nil, ""
	}
	sess, err := s.store.GetSession(r.Context(), token.Hash(ck.Value), s.now())
	if err != nil {
		return nil, ""
	}
	return &sess, ck.Value
}

// sessionCSRF derives the CSRF token of forms that act on the session
// itself (account page, logout): only the holder of the cookie can compute it.
func sessionCSRF(raw string) string { return deriveToken("mcpauth-session-csrf", raw) }

// consentCSRF derives the CSRF token of a consent form from the pending
// request's secret and the session cookie, so that a token scraped from
// another browser's page is useless (RFC 9700 §4.16, RFC 6749 §10.12,
// RFC 9700 §4.16, RFC 6749 §10.12).
func consentCSRF(requestCSRF, sessionRaw string) string {
	return deriveToken("mcpauth-consent-csrf", requestCSRF, sessionRaw)
}

// deriveToken hashes a label and parts into a 128-bit hex token.
func deriveToken(label string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(label))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (s *Server) startSession(ctx context.Context, w http.ResponseWriter, userID string) error {
	raw, hash := token.NewOpaque("")
	now := s.now()
	if err := s.store.CreateSession(ctx, store.Session{IDHash: hash, UserID: userID, CreatedAt: now, ExpiresAt: now.Add(s.life.Session)}); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: s.sessionCookieName(), Value: raw, Path: "/", HttpOnly: true,
		Secure: s.secure, SameSite: http.SameSiteLaxMode, MaxAge: int(s.life.Session / time.Second)})
	return nil
}

func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	ar, err := s.loadAuthRequest(r.Context(), r.URL.Query().Get("request"), false)
	if err != nil {
		s.writeHTMLError(w, r, http.StatusBadRequest, err)
		return
	}
	s.renderLogin(w, r, ar, "", http.StatusOK)
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, ar *authRequest, msg string, status int) {
	setFormTarget(w, ar.RedirectURI) // a remembered consent redirects straight to the client
	s.render(w, r, status, "login.html", map[string]any{"Request": ar.ID, "CSRF": ar.CSRF, "Error": msg,
		"Action": s.base + "/login"})
}

// handleLogin checks the username and password (form fields "username" and
// "password"), rate limited per user and per address.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.writeHTMLError(w, r, http.StatusBadRequest, bodyError(err, "The form could not be read."))
		return
	}
	ar, err := s.loadAuthRequest(r.Context(), r.PostForm.Get("request"), false)
	if err != nil {
		s.writeHTMLError(w, r, http.StatusBadRequest, err)
		return
	}
	// Login CSRF: a site that obtained a sign-in form of its own must not
	// post it, with its own credentials, from a visitor's browser, which
	// would sign the visitor in to the attacker's account. Browsers say
	// where a form post comes from (Fetch Metadata, Sec-Fetch-Site); a
	// sign-in that does not come from this server's own page is refused.
	// Clients that send no Fetch Metadata (scripts, browsers before 2023)
	// rely on the form's token alone.
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		s.writeHTMLError(w, r, http.StatusForbidden, oauth.NewError(oauth.InvalidRequest,
			"This sign-in form was sent from another site (Sec-Fetch-Site: %s). Sign in on this server's own page.", truncate(site, 20)))
		return
	}
	if !constantTimeEqual(r.PostForm.Get("csrf"), ar.CSRF) {
		s.writeHTMLError(w, r, http.StatusForbidden, oauth.NewError(oauth.InvalidRequest, "The form's CSRF token is missing or wrong. Reload the page and try again."))
		return
	}
	name, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	now := s.now()
	limited, err := s.loginLimited(r, name, now)
	if err != nil {
		s.writeHTMLError(w, r, http.StatusServiceUnavailable, err)
		return
	}
	if limited {
		s.observeLogin(LoginRateLimited)
		s.renderLogin(w, r, ar, "Too many sign-in attempts. Wait 15 minutes and try again.", http.StatusTooManyRequests)
		return
	}
	u, err := s.store.GetUserByName(r.Context(), name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.writeHTMLError(w, r, http.StatusServiceUnavailable, err)
		return
	}
	hash := u.PasswordHash
	if err != nil {
		hash = dummyHash
	}
	if !VerifyPassword(hash, password) || err != nil {
		s.log.Info("login failed", "user", truncate(name, 64), "remote", s.clientIP(r))
		s.observeLogin(LoginFailure)
		s.renderLogin(w, r, ar, "Wrong user name or password.", http.StatusUnauthorized)
		return
	}
	if err := s.startSession(r.Context(), w, u.ID); err != nil {
		s.writeHTMLError(w, r, http.StatusServiceUnavailable, err)
		return
	}
	s.loginSucceeded(r, name, now)
	s.observeLogin(LoginSuccess)
	accesslog.SetClientID(r.Context(), ar.ClientID)
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "login succeeded", slog.String("user", u.Name), slog.String("user_id", u.ID),
		slog.String("client_id", ar.ClientID), slog.String("remote", s.clientIP(r)), slog.String("request_id", requestID(r)))
	next := "/consent?request=" + url.QueryEscape(ar.ID)
	if ar.Return != "" {
		next = ar.Return
	}
	http.Redirect(w, r, s.base+next, http.StatusSeeOther) // RFC 9700 §4.12: 303 after a POST
}

// loginRateKeys are the store.RateHit keys of a sign-in attempt: per user
// name and address, per user name, and per client address.
func loginRateKeys(name, ip string) (userAtAddr, user, addr string) {
	name = truncate(name, 128)
	return "login:user-ip:" + ip + " " + name, "login:user:" + name, "login:ip:" + ip
}

// loginLimited counts a sign-in attempt and reports whether it is over the
// limits. Every attempt counts before the password is checked, so that
// guesses sent in parallel are bounded too; loginSucceeded takes a
// successful one back.
func (s *Server) loginLimited(r *http.Request, name string, now time.Time) (bool, error) {
	limited := false
	for _, l := range s.loginLimits(r, name) {
		n, err := s.store.RateHit(r.Context(), l.key, loginWindow, now)
		if err != nil {
			return false, err
		}
		limited = limited || n > l.max
	}
	return limited, nil
}

// loginSucceeded takes back the attempt loginLimited counted at now: only
// failed sign-ins count toward the limits, so a developer signing in again
// and again is never locked out. A failure here only leaves the attempt
// counted, so it is logged, not returned.
func (s *Server) loginSucceeded(r *http.Request, name string, now time.Time) {
	for _, l := range s.loginLimits(r, name) {
		if err := s.store.RateUndo(r.Context(), l.key, loginWindow, now); err != nil {
			s.log.Warn("login rate limit: take back a successful sign-in", "err", err)
		}
	}
}

// loginLimit is one sign-in rate limit: a store.RateHit key and its
// maximum per loginWindow.
type loginLimit struct {
	key string
	max int
}

// loginLimits are the limits of a sign-in attempt at name from r's address.
func (s *Server) loginLimits(r *http.Request, name string) []loginLimit {
	userAtAddrKey, userKey, addrKey := loginRateKeys(name, s.clientIP(r))
	return []loginLimit{{userAtAddrKey, loginPerUserAtAddr}, {userKey, loginPerUser}, {addrKey, loginPerAddress}}
}

// clientIP is the address a request is attributed to for rate limits and
// logs: the connection's peer, or, when the peer is a trusted proxy, the
// rightmost X-Forwarded-For address that is not a trusted proxy (addresses
// further left are whatever the client chose to send). A malformed entry
// stops the walk at the last trusted hop.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !s.trustedProxy(peer) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !s.trustedProxy(a) {
			return a.Unmap().String()
		}
		peer = a
	}
	return peer.Unmap().String()
}

func (s *Server) trustedProxy(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	sess, raw := s.currentSession(r)
	if sess != nil && r.ParseForm() == nil && constantTimeEqual(r.PostForm.Get("csrf"), sessionCSRF(raw)) {
		_ = s.store.DeleteSession(r.Context(), sess.IDHash)
	}
	http.SetCookie(w, &http.Cookie{Name: s.sessionCookieName(), Value: "", Path: "/", HttpOnly: true, Secure: s.secure, MaxAge: -1})
	http.Redirect(w, r, s.base+"/account", http.StatusSeeOther)
}
