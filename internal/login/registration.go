// This file chooses the client identity for an authorization server in the
// order of MCP 2025-11-25 "Client Registration Approaches":
// pre-registered credentials, a Client ID Metadata Document URL
// (draft-ietf-oauth-client-id-metadata-document), RFC 7591 dynamic client
// registration.
package login

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mcpauth/mcpauth/oauth"
)

// Token endpoint client authentication methods (RFC 7591 §2, RFC 6749
// §2.3.1).
const (
	AuthNone        = "none"
	AuthSecretBasic = "client_secret_basic"
	AuthSecretPost  = "client_secret_post"
)

// Client kinds, in MCP 2025-11-25 Authorization §Client Registration Approaches
// order.
const (
	KindPreregistered = "preregistered"
	KindCIMD          = "cimd"
	KindDCR           = "dcr"
	// KindLoopback is a loopback development client: the client_id
	// http://localhost?redirect_uri=...&scope=..., whose metadata the
	// authorization server derives from the URL (the AT Protocol OAuth
	// convention, Localhost Client Development). Not every server accepts it.
	KindLoopback = "loopback"
)

// loopbackHint is the line added to an error of an authorization with a
// loopback development client, which the server may not accept.
const loopbackHint = "the authorization server may not accept loopback development clients (http://localhost); " +
	"pass --client-id with the URL of your client metadata document, or pre-registered credentials with --registered-client-id and --registered-issuer"

// ErrNoRegistration: no way to obtain a client identity at the
// authorization server (MCP 2025-11-25 Authorization §Client Registration
// Approaches (4): ask the user).
var ErrNoRegistration = errors.New("no way to register with the authorization server")

// Credentials are pre-registered client credentials
// (MCP 2025-11-25 Authorization §Client Registration Approaches (1)).
type Credentials struct {
	// Issuer is the authorization server they belong to; they are never
	// sent to another (RFC 9728 §7.6). "" allows whichever issuer the MCP
	// server names: use it only where the MCP server is trusted.
	Issuer   string
	ClientID string
	// ClientSecret is "" for a public client.
	ClientSecret string
}

// clientKind picks the registration approach for d
// (MCP 2025-11-25 Authorization §Client Registration Approaches).
func (a *Authorizer) clientKind(d *discovery) (string, error) {
	switch r := a.opts.Registered; {
	case r != nil && (r.Issuer == "" || r.Issuer == d.issuer):
		return KindPreregistered, nil
	case d.as.ClientIDMetadataDocumentSupported && a.opts.ClientIDMetadataURL != "":
		return KindCIMD, nil
	case d.as.RegistrationEndpoint != "":
		return KindDCR, nil
	case a.opts.ClientIDMetadataURL == "":
		return KindLoopback, nil
	}
	hint := "pass pre-registered client credentials for it"
	if d.as.ClientIDMetadataDocumentSupported {
		hint = "pass --client-id with the URL of your client metadata document, or " + hint
	}
	return "", fmt.Errorf("%w %q: it has no registration_endpoint and %s", ErrNoRegistration, d.issuer, hint)
}

// client returns the client identity of the given kind for redirectURI and
// scopes.
func (a *Authorizer) client(ctx context.Context, d *discovery, kind, redirectURI string, scopes []string) (Client, error) {
	switch kind {
	case KindLoopback:
		q := url.Values{"redirect_uri": {redirectURI}}
		if len(scopes) > 0 {
			q.Set("scope", strings.Join(scopes, " "))
		}
		return Client{ID: "http://localhost?" + q.Encode(), AuthMethod: AuthNone, Kind: kind}, nil
	case KindPreregistered:
		r := a.opts.Registered
		method := AuthNone
		if r.ClientSecret != "" {
			method = pickAuthMethod(d.as.TokenEndpointAuthMethodsSupported, AuthSecretBasic, AuthSecretBasic, AuthSecretPost)
		}
		return Client{ID: r.ClientID, Secret: r.ClientSecret, AuthMethod: method, Kind: kind}, nil
	case KindCIMD:
		if _, err := checkURL("client_id", a.opts.ClientIDMetadataURL); err != nil {
			return Client{}, err
		}
		return Client{ID: a.opts.ClientIDMetadataURL, AuthMethod: AuthNone, Kind: kind}, nil
	}
	if reg, err := a.store.LoadRegistration(d.issuer); err == nil && reg.RedirectURI == redirectURI &&
		(reg.ExpiresAt.IsZero() || reg.ExpiresAt.After(a.now().Add(time.Minute))) {
		return reg.Client, nil
	}
	c, expires, err := a.register(ctx, d, redirectURI)
	if err != nil {
		return Client{}, err
	}
	err = a.store.SaveRegistration(&Registration{Issuer: d.issuer, RedirectURI: redirectURI, Client: c, ExpiresAt: expires, CreatedAt: a.now()})
	return c, err
}

// pickAuthMethod returns the first of prefs the server supports; when the
// server lists no methods, or none of prefs, it returns def.
func pickAuthMethod(supported []string, def string, prefs ...string) string {
	for _, p := range prefs {
		if slices.Contains(supported, p) {
			return p
		}
	}
	return def
}

// registrationRequest is the RFC 7591 §2 client metadata we send.
type registrationRequest struct {
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
}

// registrationResponse is the RFC 7591 §3.2.1 answer.
type registrationResponse struct {
	ClientID                string `json:"client_id"`
	ClientSecret            string `json:"client_secret"`
	ClientSecretExpiresAt   int64  `json:"client_secret_expires_at"`
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method"`
}

// register performs RFC 7591 dynamic client registration for a native
// client with one loopback redirect URI. It asks for a public client when
// the server allows one, else for a shared secret.
func (a *Authorizer) register(ctx context.Context, d *discovery, redirectURI string) (Client, time.Time, error) {
	endpoint := d.as.RegistrationEndpoint
	if _, err := checkURL("registration_endpoint", endpoint); err != nil {
		return Client{}, time.Time{}, err
	}
	method := pickAuthMethod(d.as.TokenEndpointAuthMethodsSupported, AuthNone, AuthNone, AuthSecretBasic, AuthSecretPost)
	body, err := json.Marshal(registrationRequest{
		ClientName:              a.opts.ClientName,
		RedirectURIs:            []string{redirectURI},
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		TokenEndpointAuthMethod: method,
	})
	if err != nil {
		return Client{}, time.Time{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return Client{}, time.Time{}, fmt.Errorf("register at %q: %w", endpoint, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	var rr registrationResponse
	if err := a.postJSON(req, &rr, http.StatusCreated, http.StatusOK); err != nil {
		return Client{}, time.Time{}, fmt.Errorf("register at %q: %w", endpoint, err)
	}
	if rr.ClientID == "" {
		return Client{}, time.Time{}, fmt.Errorf("register at %q: the response has no client_id", endpoint)
	}
	c := Client{ID: rr.ClientID, Secret: rr.ClientSecret, AuthMethod: rr.TokenEndpointAuthMethod, Kind: KindDCR}
	if c.AuthMethod == "" {
		c.AuthMethod = method
	}
	var expires time.Time
	if rr.ClientSecretExpiresAt > 0 {
		expires = time.Unix(rr.ClientSecretExpiresAt, 0)
	}
	return c, expires, nil
}

// postJSON sends req with the discovery client and decodes a JSON answer
// whose status is one of ok; an OAuth error body becomes an *oauth.Error.
func (a *Authorizer) postJSON(req *http.Request, v any, ok ...int) error {
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataSize+1))
	if err != nil {
		return err
	}
	if len(body) > maxMetadataSize {
		return fmt.Errorf("response larger than %d bytes", maxMetadataSize)
	}
	if !slices.Contains(ok, resp.StatusCode) {
		var oe oauth.Error
		if json.Unmarshal(body, &oe) == nil && oe.Code != "" {
			oe.Code, oe.Description, oe.URI = oauth.ErrorCode(printable(string(oe.Code))), printable(oe.Description), ""
			return fmt.Errorf("HTTP %d: %w", resp.StatusCode, &oe)
		}
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode the response: %w", err)
	}
	return nil
}

// printable returns s with bytes other than printable ASCII removed and at
// most 200 bytes kept: text from servers is shown in a terminal.
func printable(s string) string {
	b := make([]byte, 0, min(len(s), 200))
	for i := 0; i < len(s) && len(b) < 200; i++ {
		if c := s[i]; c >= ' ' && c < 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}
