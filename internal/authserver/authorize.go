package authserver

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/internal/accesslog"
	"github.com/mcpauth/mcpauth/internal/store"
	"github.com/mcpauth/mcpauth/internal/token"
	"github.com/mcpauth/mcpauth/oauth"
)

// authRequest is a validated /authorize request waiting for login and
// consent. It is stored (store.AuthRequest) so any replica can continue it.
type authRequest struct {
	ID            string    `json:"id"`
	ClientID      string    `json:"client_id"`
	RedirectURI   string    `json:"redirect_uri"`
	State         string    `json:"state,omitempty"`
	Scopes        []string  `json:"scopes"`
	Resource      string    `json:"resource"`
	CodeChallenge string    `json:"code_challenge"`
	Fingerprint   string    `json:"fingerprint,omitempty"`   // the client's metadata fingerprint when the request was made (CIMD §8.4)
	ForceConsent  bool      `json:"force_consent,omitempty"` // prompt=consent: ask even if approved before
	CSRF          string    `json:"csrf"`
	Return        string    `json:"return,omitempty"` // set for a plain sign-in (account page) instead of an authorization
	CreatedAt     time.Time `json:"created_at"`
}

// oauthParams are the authorization request parameters that must not repeat
// (OAuth 2.1 §3.1). resource is not one of them: RFC 8707 §2 allows several,
// and selectResource answers invalid_target (RFC 8707 §2).
func oauthParams() []string {
	return []string{"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
		"code_challenge_method", "prompt", "response_mode"}
}

// handleAuthorize is the authorization endpoint (OAuth 2.1 §4.1).
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.writeHTMLError(w, r, http.StatusBadRequest, bodyError(err, "The authorization request is not a valid query or form."))
		return
	}
	q := r.Form
	dropEmpty(q)
	// Until client and redirect URI are validated, errors are shown, never
	// redirected (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2).
	c, redirectURI, err := s.authorizeClient(r.Context(), q)
	if err != nil {
		s.writeHTMLError(w, r, http.StatusBadRequest, err)
		return
	}
	accesslog.SetClientID(r.Context(), c.ID)
	fail := func(err error) { s.writeRedirectError(w, r, redirectURI, q.Get("state"), err) }
	ar, p, err := s.newAuthRequest(q, c, redirectURI)
	if err != nil {
		fail(err)
		return
	}
	s.continueAuthRequest(w, r, c, ar, p, fail)
}

// authorizeClient loads the client and picks the redirect URI, the two
// parameters whose errors must not be redirected.
func (s *Server) authorizeClient(ctx context.Context, q url.Values) (*client, string, error) {
	for _, p := range []string{"client_id", "redirect_uri"} {
		if len(q[p]) > 1 {
			return nil, "", oauth.NewError(oauth.InvalidRequest, "The parameter %s appears more than once (OAuth 2.1 section 3.1).", p)
		}
	}
	c, err := s.loadClient(ctx, q.Get("client_id"))
	if err != nil {
		return nil, "", err
	}
	redirectURI := q.Get("redirect_uri")
	if redirectURI == "" {
		if c.Kind == kindCIMD || len(c.RedirectURIs) != 1 {
			return nil, "", oauth.NewError(oauth.InvalidRequest, "redirect_uri is required (CIMD section 4.2, OAuth 2.1 section 8.4.2, RFC 8252 section 7.3).")
		}
		redirectURI = c.RedirectURIs[0]
	}
	if !c.allowsRedirect(redirectURI) {
		return nil, "", oauth.NewError(oauth.InvalidRequest,
			"redirect_uri %q is not one of the redirect URIs registered by client %s; registered: %s (CIMD section 4.2, OAuth 2.1 section 8.4.2, RFC 8252 section 7.3, RFC 6749 section 3.1.2).",
			truncate(redirectURI, 300), truncate(c.ID, 300), strings.Join(c.RedirectURIs, ", "))
	}
	return c, redirectURI, nil
}

// prompt holds the prompt values that change how a request continues
// (OIDC Core §3.1.2.1); consent is carried by authRequest.ForceConsent.
type prompt struct{ none, login bool }

// newAuthRequest validates the rest of the request for client c and returns
// it as an authRequest, not yet saved. Its errors are redirected.
func (s *Server) newAuthRequest(q url.Values, c *client, redirectURI string) (*authRequest, prompt, error) {
	for _, p := range oauthParams() {
		if len(q[p]) > 1 {
			return nil, prompt{}, oauth.NewError(oauth.InvalidRequest, "The parameter %s appears more than once (OAuth 2.1 section 3.1).", p)
		}
	}
	if err := checkResponseType(q, c); err != nil {
		return nil, prompt{}, err
	}
	challenge, err := checkPKCE(q)
	if err != nil {
		return nil, prompt{}, err
	}
	if rm := q.Get("response_mode"); rm != "" && rm != "query" {
		// Answering in the query anyway would hand the code to a client
		// that reads it elsewhere (metadata: response_modes_supported).
		return nil, prompt{}, oauth.NewError(oauth.InvalidRequest, "response_mode %q is not supported; this server answers in the query only.", truncate(rm, 40))
	}
	res, err := s.selectResource(q["resource"])
	if err != nil {
		return nil, prompt{}, err
	}
	scopes, err := s.selectScopes(c, res, q.Get("scope"))
	if err != nil {
		return nil, prompt{}, err
	}
	values := strings.Fields(q.Get("prompt")) // OIDC Core §3.1.2.1: space-delimited
	if slices.Contains(values, "none") && len(values) > 1 {
		return nil, prompt{}, oauth.NewError(oauth.InvalidRequest, "prompt=none cannot be combined with other prompt values.")
	}
	p := prompt{none: slices.Contains(values, "none"), login: slices.Contains(values, "login")}
	ar := &authRequest{ID: randomID(18), ClientID: c.ID, RedirectURI: redirectURI, State: q.Get("state"), Scopes: scopes,
		Resource: res, CodeChallenge: challenge, Fingerprint: c.Fingerprint, ForceConsent: slices.Contains(values, "consent"),
		CSRF: randomID(18), CreatedAt: s.now()}
	return ar, p, nil
}

// checkResponseType accepts response_type=code from a client allowed the
// authorization_code grant (OAuth 2.1 §4.1.1).
func checkResponseType(q url.Values, c *client) error {
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		return oauth.NewError(oauth.InvalidRequest, "response_type is required; use \"code\" (OAuth 2.1 §4.1.1).")
	default:
		return oauth.NewError(oauth.UnsupportedResponseType, "response_type must be \"code\" (OAuth 2.1 §4.1.1), got %q.", truncate(rt, 50))
	}
	if !c.allowsGrant("authorization_code") {
		return oauth.NewError(oauth.UnauthorizedClient, "The client's grant_types do not include authorization_code.")
	}
	return nil
}

// checkPKCE returns the request's S256 code_challenge (RFC 7636 §4.3).
func checkPKCE(q url.Values) (string, error) {
	challenge := q.Get("code_challenge")
	switch method := q.Get("code_challenge_method"); {
	case challenge == "":
		return "", oauth.NewError(oauth.InvalidRequest, "code_challenge is required: use PKCE with S256 (OAuth 2.1 section 4.1.1, RFC 9700 section 2.1.1).")
	case method != "S256":
		return "", oauth.NewError(oauth.InvalidRequest, "code_challenge_method must be S256 (plain, or an omitted method, is not accepted; OAuth 2.1 section 4.1.1, RFC 9700 section 2.1.1).")
	case !validChallenge(challenge):
		return "", oauth.NewError(oauth.InvalidRequest, "code_challenge must be 43 base64url characters, the S256 hash of the code_verifier (RFC 7636 §4.2).")
	}
	return challenge, nil
}

// continueAuthRequest issues a code at once when the user need not be asked
// (development auto-approve, or a remembered consent), answers prompt=none,
// or saves ar and sends the user to sign in or to the consent page.
func (s *Server) continueAuthRequest(w http.ResponseWriter, r *http.Request, c *client, ar *authRequest, p prompt, fail func(error)) {
	if s.autoUser != "" {
		u, err := s.store.GetUserByName(r.Context(), s.autoUser)
		if err != nil {
			fail(fmt.Errorf("dev auto-approve user %q: %w", s.autoUser, err))
			return
		}
		s.issueCode(w, r, ar, u.ID)
		return
	}
	sess, _ := s.currentSession(r)
	if sess != nil && !p.login && s.consentRemembered(r.Context(), sess.UserID, c, ar) {
		s.issueCode(w, r, ar, sess.UserID)
		return
	}
	if p.none {
		if sess == nil {
			fail(oauth.NewError(oauth.LoginRequired, "prompt=none, but the user is not signed in."))
		} else {
			fail(oauth.NewError(oauth.ConsentRequired, "prompt=none, but the user has not approved this client for this resource and scope (RFC 9700 section 4.11.2, MCP 2025-11-25 Authorization section Open Redirection)."))
		}
		return
	}
	if err := s.saveAuthRequest(r.Context(), ar); err != nil {
		fail(err)
		return
	}
	next := "/consent?request=" + url.QueryEscape(ar.ID)
	if sess == nil || p.login {
		next = "/login?request=" + url.QueryEscape(ar.ID)
	}
	http.Redirect(w, r, s.base+next, http.StatusSeeOther)
}

func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for i := 0; i < len(c); i++ {
		ch := c[i]
		if !(ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return false
		}
	}
	return true
}

// selectResource applies RFC 8707 §2 with mcpauth's default: one resource
// per request; absent means the only protected resource, if there is exactly
// one. With no resources configured, any absolute https (or loopback http) URI
// is accepted.
func (s *Server) selectResource(values []string) (string, error) {
	switch len(values) {
	case 0:
		if len(s.resOrder) == 1 {
			return s.resOrder[0], nil
		}
		return "", oauth.NewError(oauth.InvalidTarget, "resource is required: name the MCP server the token is for (RFC 8707 section 2).")
	case 1:
	default:
		return "", oauth.NewError(oauth.InvalidTarget, "Request one resource at a time (got %d).", len(values))
	}
	canon, err := oauth.CanonicalResource(values[0])
	if err != nil {
		return "", oauth.NewError(oauth.InvalidTarget, "resource %q is not a valid absolute URI without a fragment: %v (RFC 8707 §2).", truncate(values[0], 200), err)
	}
	if len(s.resOrder) == 0 {
		u, _ := url.Parse(canon)
		if u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname())) {
			return "", oauth.NewError(oauth.InvalidTarget, "resource %q must be an https URI.", truncate(canon, 200))
		}
		return canon, nil
	}
	if _, ok := s.resources[canon]; !ok {
		return "", oauth.NewError(oauth.InvalidTarget, "resource %q is not protected by this server; known resources: %s.", truncate(canon, 200), strings.Join(s.resOrder, ", "))
	}
	return canon, nil
}

// selectScopes checks the requested scopes against the resource's scopes
// and the client's declared scope (RFC 7591 §2). No scope means every scope
// the resource defines (within the client's).
func (s *Server) selectScopes(c *client, resource, requested string) ([]string, error) {
	var resScopes []string
	if r, ok := s.resources[resource]; ok {
		resScopes = r.Scopes
	}
	var clientScopes []string
	if c.Scope != "" {
		clientScopes = strings.Fields(c.Scope)
	}
	if err := oauth.CheckScope(requested); err != nil {
		return nil, oauth.NewError(oauth.InvalidScope, "The scope parameter is malformed: %v.", err)
	}
	want := strings.Fields(requested)
	if len(want) == 0 {
		for _, sc := range resScopes {
			if clientScopes == nil || slices.Contains(clientScopes, sc) {
				want = append(want, sc)
			}
		}
	}
	for _, sc := range want {
		if len(resScopes) > 0 && !slices.Contains(resScopes, sc) {
			return nil, oauth.NewError(oauth.InvalidScope, "Scope %q is not defined for resource %s; it offers: %s.", truncate(sc, 100), resource, strings.Join(resScopes, " "))
		}
		if clientScopes != nil && !slices.Contains(clientScopes, sc) {
			return nil, oauth.NewError(oauth.InvalidScope, "Scope %q is not in the scope the client's metadata declares (RFC 7591 section 2).", truncate(sc, 100))
		}
	}
	return normalizeScopes(want), nil
}

// normalizeScopes sorts and de-duplicates.
func normalizeScopes(sc []string) []string {
	out := slices.Clone(sc)
	sort.Strings(out)
	return slices.Compact(out)
}

func (s *Server) saveAuthRequest(ctx context.Context, ar *authRequest) error {
	data, err := json.Marshal(ar)
	if err != nil {
		return err
	}
	return s.store.PutAuthRequest(ctx, store.AuthRequest{ID: ar.ID, Data: data, ExpiresAt: ar.CreatedAt.Add(s.life.AuthRequest)})
}

func (s *Server) loadAuthRequest(ctx context.Context, id string, consume bool) (*authRequest, error) {
	var sar store.AuthRequest
	var err error
	if consume {
		sar, err = s.store.ConsumeAuthRequest(ctx, id, s.now())
	} else {
		sar, err = s.store.GetAuthRequest(ctx, id, s.now())
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, oauth.NewError(oauth.InvalidRequest, "This authorization request has expired or was already used. Start again from the application.")
	}
	if err != nil {
		return nil, err
	}
	var ar authRequest
	if err := json.Unmarshal(sar.Data, &ar); err != nil {
		return nil, fmt.Errorf("stored auth request %q: %w", id, err)
	}
	return &ar, nil
}

// consentRemembered reports whether the user approved this client for this
// resource and at least these scopes, with the same client metadata
// fingerprint (MCP Security Best Practices §Confused Deputy Problem,
// CIMD §8.4).
func (s *Server) consentRemembered(ctx context.Context, userID string, c *client, ar *authRequest) bool {
	if ar.ForceConsent {
		return false
	}
	cons, err := s.store.GetConsent(ctx, userID, c.ID, ar.Resource)
	if err != nil {
		return false
	}
	if cons.Fingerprint != c.Fingerprint {
		return false
	}
	granted := strings.Fields(cons.Scopes)
	for _, sc := range ar.Scopes {
		if !slices.Contains(granted, sc) {
			return false
		}
	}
	return true
}

// issueCode creates the authorization code and redirects to the client
// (OAuth 2.1 §4.1.2, RFC 9207 §2).
func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, ar *authRequest, userID string) {
	code, hash := token.NewOpaque(token.CodePrefix)
	now := s.now()
	c := store.Code{Hash: hash, ClientID: ar.ClientID, UserID: userID,
		RedirectURI: ar.RedirectURI, CodeChallenge: ar.CodeChallenge, Resource: ar.Resource,
		Scopes: strings.Join(ar.Scopes, " "), FamilyID: token.NewSortableID(), AuthTime: now, ExpiresAt: now.Add(s.life.Code)}
	if err := s.store.CreateCode(r.Context(), c); err != nil {
		s.writeRedirectError(w, r, ar.RedirectURI, ar.State, err)
		return
	}
	s.codes.put(c, now)
	q := url.Values{}
	q.Set("code", code)
	if ar.State != "" {
		q.Set("state", ar.State)
	}
	q.Set("iss", s.issuer)
	http.Redirect(w, r, appendQuery(ar.RedirectURI, q), http.StatusSeeOther)
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
