// This file talks to the token endpoint: the authorization code grant with
// PKCE and resource (RFC 6749 §4.1.3, RFC 7636 §4.5, RFC 8707 §2.2,
// OAuth 2.1 §4.1.3), the refresh grant (RFC 6749 §6), and client authentication
// (RFC 6749 §2.3.1).
package login

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// tokenResponse is the RFC 6749 §5.1 answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

// tokenRequest posts form to the token endpoint, authenticating as c.
func (a *Authorizer) tokenRequest(ctx context.Context, endpoint string, c Client, form url.Values) (*tokenResponse, error) {
	if _, err := checkURL("token_endpoint", endpoint); err != nil {
		return nil, err
	}
	switch c.AuthMethod {
	case AuthSecretPost:
		form.Set("client_id", c.ID)
		form.Set("client_secret", c.Secret)
	case AuthSecretBasic:
	default:
		form.Set("client_id", c.ID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.AuthMethod == AuthSecretBasic {
		// RFC 6749 §2.3.1: both parts form-encoded before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	var tr tokenResponse
	if err := a.postJSON(req, &tr, http.StatusOK); err != nil {
		return nil, fmt.Errorf("%s grant at %q: %w", form.Get("grant_type"), endpoint, err)
	}
	if tr.AccessToken == "" {
		return nil, fmt.Errorf("%s grant at %q: the response has no access_token", form.Get("grant_type"), endpoint)
	}
	if !strings.EqualFold(tr.TokenType, "bearer") {
		return nil, fmt.Errorf("%s grant at %q: token_type %q is not Bearer (DPoP is not supported)", form.Get("grant_type"), endpoint, printable(tr.TokenType))
	}
	return &tr, nil
}

// exchangeCode redeems an authorization code (OAuth 2.1 §4.1.3, RFC 8707 §2.2).
func (a *Authorizer) exchangeCode(ctx context.Context, d *discovery, c Client, code, verifier, redirectURI string, requested []string) (*Session, error) {
	tr, err := a.tokenRequest(ctx, d.as.TokenEndpoint, c, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"code_verifier": {verifier},
		"redirect_uri":  {redirectURI},
		"resource":      {d.resource},
	})
	if err != nil {
		return nil, err
	}
	s := &Session{
		MCPURL:        a.mcpURL,
		Resource:      d.resource,
		Issuer:        d.issuer,
		TokenEndpoint: d.as.TokenEndpoint,
		Client:        c,
		Requested:     requested,
	}
	a.applyToken(s, tr)
	return s, nil
}

// refresh uses s's refresh token (RFC 6749 §6) and returns the updated
// session; s is not modified.
func (a *Authorizer) refresh(ctx context.Context, s *Session) (*Session, error) {
	tr, err := a.tokenRequest(ctx, s.TokenEndpoint, s.Client, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {s.RefreshToken},
		"resource":      {s.Resource},
	})
	if err != nil {
		return nil, err
	}
	ns := *s
	a.applyToken(&ns, tr)
	if tr.RefreshToken == "" {
		ns.RefreshToken = s.RefreshToken // RFC 6749 §6: the old one stays valid
	}
	if tr.Scope == "" {
		ns.Granted = s.Granted // RFC 6749 §5.1: unchanged
	}
	return &ns, nil
}

// applyToken copies a token response into s.
func (a *Authorizer) applyToken(s *Session, tr *tokenResponse) {
	now := a.now()
	s.AccessToken, s.TokenType, s.RefreshToken = tr.AccessToken, "Bearer", tr.RefreshToken
	s.Expiry = time.Time{}
	if tr.ExpiresIn > 0 {
		s.Expiry = now.Add(time.Duration(tr.ExpiresIn) * time.Second)
	}
	s.Granted = s.Requested
	if tr.Scope != "" {
		s.Granted = splitScope(tr.Scope)
	}
	s.UpdatedAt = now
}
