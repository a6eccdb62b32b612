package authserver

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcpauth/mcpauth/cimd"
	"github.com/mcpauth/mcpauth/internal/accesslog"
	"github.com/mcpauth/mcpauth/internal/store"
	"github.com/mcpauth/mcpauth/oauth"
)

// consentView is what the consent page shows (CIMD §8.5,
// MCP 2025-11-25 Authorization §Localhost Redirect URI Risks,
// CIMD §8.5).
type consentView struct {
	Request, CSRF, Action string
	ClientHost            string // first and prominent
	ClientID              string
	ClientName            string
	Verified              bool
	SelfAsserted          bool // DCR client (RFC 7591 §5)
	Development           bool // loopback client accepted under --dev-allow-loopback
	LoopbackClient        bool // a loopback development client (http://localhost client_id)
	Stale                 bool
	LogoURL               string // served from our own origin (CIMD §8.8, §9.2)
	RedirectHost          string
	RedirectURI           string
	LocalhostWarning      bool
	Scopes                []string
	Resource              string
	ResourceName          string
	UserName              string
	Reconsent             bool // a remembered consent exists but the client's metadata changed
}

// pendingClient loads the client of a pending request again, applying the
// trust policy and the document's freshness, and checks that nothing the
// user is about to approve changed since /authorize validated it: the
// redirect URI is still registered and the security-relevant metadata is
// the same (CIMD §8.4). Otherwise the user starts
// again.
func (s *Server) pendingClient(ctx context.Context, ar *authRequest) (*client, error) {
	c, err := s.loadClient(ctx, ar.ClientID)
	if err != nil {
		return nil, err
	}
	if c.Fingerprint != ar.Fingerprint || !c.allowsRedirect(ar.RedirectURI) {
		return nil, oauth.NewError(oauth.InvalidRequest, "The application's registration changed while you were signing in. Start again from the application.")
	}
	return c, nil
}

func (s *Server) handleConsentPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("request")
	sess, rawSession := s.currentSession(r)
	if sess == nil {
		http.Redirect(w, r, s.base+"/login?request="+url.QueryEscape(id), http.StatusSeeOther)
		return
	}
	ar, err := s.loadAuthRequest(r.Context(), id, false)
	if err != nil {
		s.writeHTMLError(w, r, http.StatusBadRequest, err)
		return
	}
	c, err := s.pendingClient(r.Context(), ar)
	if err != nil {
		s.writeHTMLError(w, r, http.StatusBadRequest, err)
		return
	}
	if s.consentRemembered(r.Context(), sess.UserID, c, ar) {
		if _, err := s.store.ConsumeAuthRequest(r.Context(), ar.ID, s.now()); err != nil {
			s.writeHTMLError(w, r, http.StatusBadRequest, oauth.NewError(oauth.InvalidRequest, "This authorization request was already used."))
			return
		}
		s.issueCode(w, r, ar, sess.UserID)
		return
	}
	u, err := s.store.GetUser(r.Context(), sess.UserID)
	if err != nil {
		s.writeHTMLError(w, r, http.StatusBadRequest, err)
		return
	}
	v := consentView{Request: ar.ID, CSRF: consentCSRF(ar.CSRF, rawSession), Action: s.base + "/consent",
		ClientHost: c.Host, ClientID: c.ID, ClientName: c.Name, Verified: c.Tier == cimd.TierVerified,
		SelfAsserted: c.Kind == kindDCR, Stale: c.Stale, RedirectURI: ar.RedirectURI,
		Scopes: ar.Scopes, Resource: ar.Resource, UserName: u.Name}
	if c.Kind != kindCIMD {
		v.ClientHost = c.ID
	}
	if ru, err := url.Parse(ar.RedirectURI); err == nil {
		v.RedirectHost = ru.Host
		if v.RedirectHost == "" {
			v.RedirectHost = ru.Scheme + ":" // private-use scheme
		}
	}
	// CIMD §8.5, MCP 2025-11-25 Authorization §Localhost Redirect URI Risks,
	// MCP 2025-11-25 Authorization §Localhost Redirect URI Risks: warn when the code would go to this machine
	// only.
	v.LocalhostWarning = c.LocalhostOnly || oauth.IsLoopbackRedirect(ar.RedirectURI)
	v.Development = c.Kind == kindCIMD && isLoopbackHost(c.Host)
	if c.Loopback {
		v.LoopbackClient, v.LocalhostWarning, v.ClientHost = true, true, "a development client on this computer"
	}
	if c.LogoURI != "" && c.Kind == kindCIMD {
		v.LogoURL = s.base + "/logo?client_id=" + url.QueryEscape(c.ID)
	}
	if res, ok := s.resources[ar.Resource]; ok {
		v.ResourceName = res.Name
	}
	if prev, err := s.store.GetConsent(r.Context(), sess.UserID, c.ID, ar.Resource); err == nil && prev.Fingerprint != c.Fingerprint {
		v.Reconsent = true
	}
	setFormTarget(w, ar.RedirectURI)
	s.render(w, r, http.StatusOK, "consent.html", v)
}

// handleConsent takes the decision (form field "decision": "approve" or
// "deny"). The request is consumed atomically, so a replayed POST fails
// (RFC 9700 §4.16, RFC 6749 §10.12).
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.writeHTMLError(w, r, http.StatusBadRequest, bodyError(err, "The form could not be read."))
		return
	}
	sess, rawSession := s.currentSession(r)
	if sess == nil {
		s.writeHTMLError(w, r, http.StatusForbidden, oauth.NewError(oauth.AccessDenied, "You are not signed in. Start again from the application."))
		return
	}
	ar, err := s.loadAuthRequest(r.Context(), r.PostForm.Get("request"), false)
	if err != nil {
		s.writeHTMLError(w, r, http.StatusBadRequest, err)
		return
	}
	if !constantTimeEqual(r.PostForm.Get("csrf"), consentCSRF(ar.CSRF, rawSession)) {
		s.writeHTMLError(w, r, http.StatusForbidden, oauth.NewError(oauth.InvalidRequest, "The form's CSRF token is missing or wrong (RFC 9700 section 4.16, RFC 6749 section 10.12). Start again from the application."))
		return
	}
	decision := r.PostForm.Get("decision")
	if len(r.PostForm["decision"]) != 1 || decision != "approve" && decision != "deny" {
		s.writeHTMLError(w, r, http.StatusBadRequest, oauth.NewError(oauth.InvalidRequest, "decision must be sent once, as approve or deny."))
		return
	}
	if _, err := s.loadAuthRequest(r.Context(), ar.ID, true); err != nil {
		s.writeHTMLError(w, r, http.StatusBadRequest, err)
		return
	}
	c, err := s.pendingClient(r.Context(), ar)
	if err != nil {
		s.writeHTMLError(w, r, http.StatusBadRequest, err)
		return
	}
	accesslog.SetClientID(r.Context(), c.ID)
	consentAttrs := []slog.Attr{slog.String("user_id", sess.UserID), slog.String("client_id", c.ID), slog.String("resource", ar.Resource),
		slog.String("scopes", strings.Join(ar.Scopes, " ")), slog.String("request_id", requestID(r))}
	if decision == "deny" {
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "consent denied", consentAttrs...)
		s.writeRedirectError(w, r, ar.RedirectURI, ar.State, oauth.NewError(oauth.AccessDenied, "The user denied the request."))
		return
	}
	if err := s.store.PutConsent(r.Context(), store.Consent{UserID: sess.UserID, ClientID: c.ID, Resource: ar.Resource,
		Scopes: strings.Join(ar.Scopes, " "), Fingerprint: c.Fingerprint, CreatedAt: s.now()}); err != nil {
		s.writeRedirectError(w, r, ar.RedirectURI, ar.State, err)
		return
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "consent granted", consentAttrs...)
	s.issueCode(w, r, ar, sess.UserID)
}
