package authserver

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/internal/store"
	"github.com/mcpauth/mcpauth/internal/token"
	"github.com/mcpauth/mcpauth/oauth"
)

// tokenResponse is RFC 6749 §5.1.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// errNotForm is the sentinel wrapped by parseBackChannelForm's error for a
// body that is not a form.
var errNotForm = errors.New("not a form")

// parseBackChannelForm reads an application/x-www-form-urlencoded body and
// rejects repeated parameters (OAuth 2.1 §3.1, §4.1.3, RFC 9700 §2.4),
// except resource, which RFC 8707 §2 allows to repeat (checkTokenResource
// answers invalid_target). A parameter without a value counts as omitted
// (OAuth 2.1 §3.1): it is removed. A body of another type is invalid_request,
// wrapping errNotForm.
func parseBackChannelForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return nil, fmt.Errorf("%w: %w", oauth.NewError(oauth.InvalidRequest, "Send parameters as application/x-www-form-urlencoded (RFC 6749 §3.2), not %q.", truncate(mt, 60)), errNotForm)
	}
	if err := r.ParseForm(); err != nil {
		return nil, bodyError(err, "The request body is not a valid form (RFC 6749 appendix B).")
	}
	dropEmpty(r.PostForm)
	for k, vs := range r.PostForm {
		if len(vs) > 1 && k != "resource" {
			return nil, oauth.NewError(oauth.InvalidRequest, "The parameter %s appears more than once (OAuth 2.1 section 3.1).", truncate(k, 60))
		}
	}
	return r.PostForm, nil
}

// dropEmpty removes parameter values that are empty: OAuth treats a
// parameter sent without a value as omitted (OAuth 2.1 §3.1, §3.2).
func dropEmpty(v url.Values) {
	for k, vs := range v {
		vs = slices.DeleteFunc(vs, func(s string) bool { return s == "" })
		if len(vs) == 0 {
			delete(v, k)
		} else {
			v[k] = vs
		}
	}
}

// handleToken is the token endpoint (OAuth 2.1 §4.1.3).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	form, err := parseBackChannelForm(w, r)
	if errors.Is(err, errNotForm) {
		// Parameters sent as JSON (OAuth 2.1 §4.1.3, RFC 9700 §2.4): no grant type
		// this endpoint supports can be read from such a body.
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		err = oauth.NewError(oauth.UnsupportedGrantType, "The token endpoint reads grant_type and its parameters from an application/x-www-form-urlencoded body (RFC 6749 §3.2); a %q body carries none it supports.", truncate(mt, 60))
	}
	if err != nil {
		s.observeToken("", err)
		s.writeJSONError(w, r, err)
		return
	}
	var resp *tokenResponse
	gt := form.Get("grant_type")
	traceGrant(r.Context(), gt)
	switch gt {
	case "authorization_code":
		resp, err = s.grantCode(r, form)
	case "refresh_token":
		resp, err = s.grantRefresh(r, form)
	case "":
		err = oauth.NewError(oauth.InvalidRequest, "grant_type is required.")
	default:
		err = oauth.NewError(oauth.UnsupportedGrantType, "grant_type %q is not supported; use authorization_code or refresh_token (RFC 9700 section 2.1.2, section 2.4).", truncate(gt, 80))
	}
	s.observeToken(gt, err)
	if err != nil {
		s.writeJSONError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	_ = json.NewEncoder(w).Encode(resp)
}

func invalidGrant(format string, args ...any) error {
	return oauth.NewError(oauth.InvalidGrant, format, args...)
}

func (s *Server) grantCode(r *http.Request, form url.Values) (*tokenResponse, error) {
	c, err := s.authenticateClient(r, form) // first: a failed authentication consumes nothing
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	if form.Get("code") == "" {
		return nil, oauth.NewError(oauth.InvalidRequest, "code is required (OAuth 2.1 §4.1.3).")
	}
	hash := token.Hash(form.Get("code"))
	cd, err := s.code(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidGrant("The authorization code is unknown or expired.")
	} else if err != nil {
		return nil, err
	}
	now := s.now()
	switch {
	case cd.ClientID != c.ID:
		return nil, invalidGrant("The authorization code was issued to another client (OAuth 2.1 section 4.1.3).")
	case !cd.UsedAt.IsZero():
		s.revokeFamily(r, cd.FamilyID, "code replay")
		return nil, invalidGrant("The authorization code was already used; the tokens issued for it are revoked (OAuth 2.1 section 4.1.3).")
	case !now.Before(cd.ExpiresAt):
		return nil, invalidGrant("The authorization code has expired.")
	case form.Get("redirect_uri") != "" && form.Get("redirect_uri") != cd.RedirectURI:
		return nil, invalidGrant("redirect_uri differs from the one in the authorization request (RFC 6749 section 4.1.3).")
	}
	if err := checkVerifier(form.Get("code_verifier"), cd.CodeChallenge); err != nil {
		return nil, err
	}
	if err := checkTokenResource(form, cd.Resource); err != nil {
		return nil, err
	}
	fam := store.Family{ID: cd.FamilyID, ClientID: c.ID, UserID: cd.UserID, Resource: cd.Resource, Scopes: cd.Scopes,
		Fingerprint: c.Fingerprint, KeyID: c.AssertionKey, CreatedAt: now, ExpiresAt: now.Add(s.life.RefreshAbsolute)}
	resp, rt, err := s.mint(r, "authorization_code", c, fam, cd.Scopes, cd.AuthTime)
	if err != nil {
		return nil, err
	}
	// Durable before the response is written: the code is consumed and the
	// family and refresh token stored in one transaction.
	switch err := s.store.RedeemCode(ctx, hash, now, fam, rt); {
	case errors.Is(err, store.ErrAlreadyUsed):
		s.revokeFamily(r, cd.FamilyID, "code replay")
		return nil, invalidGrant("The authorization code was already used; the tokens issued for it are revoked (OAuth 2.1 section 4.1.3).")
	case errors.Is(err, store.ErrNotFound):
		return nil, invalidGrant("The authorization code is unknown or expired.")
	case err != nil:
		return nil, err
	}
	return resp, nil
}

// code returns the authorization code with this hash: from the codes this
// process issued, or else from the store.
func (s *Server) code(ctx context.Context, hash string) (store.Code, error) {
	if c, ok := s.codes.take(hash); ok {
		return c, nil
	}
	return s.store.GetCode(ctx, hash)
}

// checkTokenResource applies RFC 8707 §2.2 at the token endpoint
// (RFC 8707 §2.2): resource, when sent, must name the one resource
// the grant is for; a different or broader set is invalid_target.
func checkTokenResource(form url.Values, granted string) error {
	vs := form["resource"]
	if len(vs) == 0 {
		return nil
	}
	if len(vs) == 1 {
		if canon, err := oauth.CanonicalResource(vs[0]); err == nil && canon == granted {
			return nil
		}
	}
	return oauth.NewError(oauth.InvalidTarget, "resource must be the one authorized: %s (RFC 8707 section 2.2).", granted)
}

// checkVerifier validates an RFC 7636 code_verifier against its S256 challenge
// (OAuth 2.1 §4.1.3, RFC 7636 §4.6, §4.1).
func checkVerifier(v, challenge string) error {
	if v == "" {
		return oauth.NewError(oauth.InvalidRequest, "code_verifier is required (PKCE, OAuth 2.1 section 4.1.3, RFC 7636 section 4.6).")
	}
	if len(v) < 43 || len(v) > 128 || strings.IndexFunc(v, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' || r == '~')
	}) >= 0 {
		return invalidGrant("code_verifier must be 43-128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1).")
	}
	sum := sha256.Sum256([]byte(v))
	if !constantTimeEqual(base64.RawURLEncoding.EncodeToString(sum[:]), challenge) {
		return invalidGrant("code_verifier does not match the code_challenge.")
	}
	return nil
}

func (s *Server) grantRefresh(r *http.Request, form url.Values) (*tokenResponse, error) {
	c, err := s.authenticateClient(r, form)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	if form.Get("refresh_token") == "" {
		return nil, oauth.NewError(oauth.InvalidRequest, "refresh_token is required (OAuth 2.1 §4.3.1).")
	}
	oldHash := token.Hash(form.Get("refresh_token"))
	rt, fam, err := s.store.GetRefreshToken(ctx, oldHash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidGrant("The refresh token is unknown or expired.")
	} else if err != nil {
		return nil, err
	}
	now := s.now()
	switch {
	case fam.ClientID != c.ID:
		return nil, invalidGrant("The refresh token was issued to another client.")
	case !fam.RevokedAt.IsZero():
		return nil, invalidGrant("The refresh token was revoked.")
	case !rt.UsedAt.IsZero():
		s.revokeFamily(r, fam.ID, "refresh token replay")
		return nil, invalidGrant("The refresh token was already used; its whole family is now revoked (OAuth 2.1 section 4.3.1, RFC 9700 section 4.14.2).")
	case !now.Before(rt.ExpiresAt) || !now.Before(fam.ExpiresAt):
		return nil, invalidGrant("The refresh token has expired. Authorize again.")
	case !c.allowsGrant("refresh_token"):
		return nil, oauth.NewError(oauth.UnauthorizedClient, "The client's grant_types do not include refresh_token (RFC 7591 section 2, RFC 9700 section 2.1.2, section 2.4).")
	}
	if err := s.checkKeyBinding(r, c, fam); err != nil {
		return nil, err
	}
	scopes := fam.Scopes
	if form.Get("scope") != "" {
		granted := strings.Fields(fam.Scopes)
		want := normalizeScopes(strings.Fields(form.Get("scope")))
		for _, sc := range want {
			if !slices.Contains(granted, sc) {
				return nil, oauth.NewError(oauth.InvalidScope, "Scope %q was not granted; a refresh cannot broaden scope (OAuth 2.1 section 4.3.1, RFC 9700 section 4.14.2).", truncate(sc, 100))
			}
		}
		scopes = strings.Join(want, " ")
	}
	if err := checkTokenResource(form, fam.Resource); err != nil {
		return nil, err
	}
	resp, next, err := s.mint(r, "refresh_token", c, fam, scopes, fam.CreatedAt)
	if err != nil {
		return nil, err
	}
	switch err := s.store.RotateRefreshToken(ctx, oldHash, now, *next); {
	case errors.Is(err, store.ErrAlreadyUsed):
		s.revokeFamily(r, fam.ID, "refresh token replay")
		return nil, invalidGrant("The refresh token was already used; its whole family is now revoked (OAuth 2.1 section 4.3.1, RFC 9700 section 4.14.2).")
	case err != nil:
		return nil, err
	}
	return resp, nil
}

// mint signs an access token for the family and, when the client may
// refresh, creates the next refresh token (not yet stored). It logs the
// issuance for grant, never the tokens.
func (s *Server) mint(r *http.Request, grant string, c *client, fam store.Family, scopes string, authTime time.Time) (*tokenResponse, *store.RefreshToken, error) {
	now := s.now()
	at, err := s.keys.SignAccessToken(token.AccessClaims{Issuer: s.issuer, Subject: fam.UserID, ClientID: c.ID,
		Audience: fam.Resource, Scope: scopes, JTI: randomID(12), FamilyID: fam.ID,
		IssuedAt: now, ExpiresAt: now.Add(s.life.AccessToken), AuthTime: authTime})
	if err != nil {
		return nil, nil, err
	}
	resp := &tokenResponse{AccessToken: at, TokenType: "Bearer", ExpiresIn: int64(s.life.AccessToken / time.Second), Scope: scopes}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "token issued", slog.String("grant_type", grant), slog.String("client_id", c.ID),
		slog.String("user_id", fam.UserID), slog.String("resource", fam.Resource), slog.String("scopes", scopes),
		slog.String("family_id", fam.ID), slog.String("request_id", requestID(r)))
	if !c.allowsGrant("refresh_token") {
		return resp, nil, nil
	}
	raw, hash := token.NewOpaque(token.RefreshPrefix)
	exp := now.Add(s.life.RefreshIdle)
	if exp.After(fam.ExpiresAt) {
		exp = fam.ExpiresAt
	}
	resp.RefreshToken = raw
	return resp, &store.RefreshToken{Hash: hash, FamilyID: fam.ID, CreatedAt: now, ExpiresAt: exp}, nil
}

// checkKeyBinding enforces CIMD §8.2, §8.4, RFC 7523 §3 for a grant made to a
// private_key_jwt client: the client must still authenticate with
// private_key_jwt (CIMD §8.4: a document downgraded to none
// cannot refresh) and the key used at the grant must still be published.
// Otherwise the family is revoked.
func (s *Server) checkKeyBinding(r *http.Request, c *client, fam store.Family) error {
	if fam.KeyID == "" {
		return nil
	}
	if c.AuthMethod != "private_key_jwt" {
		s.revokeFamily(r, fam.ID, "client authentication method changed")
		return invalidGrant("The client no longer authenticates with private_key_jwt; the grant is revoked. Authorize again (CIMD section 8.4).")
	}
	ok, err := s.keyStillPublished(r.Context(), c, fam.KeyID)
	if err != nil {
		return err
	}
	if !ok {
		s.revokeFamily(r, fam.ID, "client key removed")
		return invalidGrant("The key this grant was made with is no longer in the client's JWKS; the grant is revoked. Authorize again (CIMD section 8.4).")
	}
	return nil
}

func (s *Server) revokeFamily(r *http.Request, id, why string) {
	if err := s.store.RevokeFamily(r.Context(), id, s.now()); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("revoke family", "family", id, "why", why, "err", err)
		return
	}
	s.log.Warn("family revoked", "family", id, "why", why)
}
