package authserver

import (
	"net/http"
	"net/url"

	"github.com/mcpauth/mcpauth/oauth"
)

type accountConsent struct {
	ClientID, Host, Resource, Scopes string
}

// handleAccount lists the clients the signed-in user authorized, each with a
// revoke button. Without a session it starts a sign-in that returns here.
func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request) {
	sess, raw := s.currentSession(r)
	if sess == nil {
		ar := &authRequest{ID: randomID(18), CSRF: randomID(18), Return: "/account", CreatedAt: s.now()}
		if err := s.saveAuthRequest(r.Context(), ar); err != nil {
			s.writeHTMLError(w, r, http.StatusServiceUnavailable, err)
			return
		}
		http.Redirect(w, r, s.base+"/login?request="+url.QueryEscape(ar.ID), http.StatusSeeOther)
		return
	}
	u, err := s.store.GetUser(r.Context(), sess.UserID)
	if err != nil {
		s.writeHTMLError(w, r, http.StatusServiceUnavailable, err)
		return
	}
	consents, err := s.store.ListConsents(r.Context(), sess.UserID)
	if err != nil {
		s.writeHTMLError(w, r, http.StatusServiceUnavailable, err)
		return
	}
	var list []accountConsent
	for _, c := range consents {
		host := c.ClientID
		if u, err := url.Parse(c.ClientID); err == nil && u.Host != "" {
			host = u.Host
		}
		list = append(list, accountConsent{ClientID: c.ClientID, Host: host, Resource: c.Resource, Scopes: c.Scopes})
	}
	s.render(w, r, http.StatusOK, "account.html", map[string]any{"UserName": u.Name, "Consents": list,
		"CSRF": sessionCSRF(raw), "RevokeAction": s.base + "/account/revoke", "LogoutAction": s.base + "/logout"})
}

// handleAccountRevoke deletes the user's consent for a client and revokes its
// refresh families: refresh fails and its access tokens are inactive at
// introspection at once.
func (s *Server) handleAccountRevoke(w http.ResponseWriter, r *http.Request) {
	sess, raw := s.currentSession(r)
	if sess == nil || r.ParseForm() != nil || !constantTimeEqual(r.PostForm.Get("csrf"), sessionCSRF(raw)) {
		s.writeHTMLError(w, r, http.StatusForbidden, oauth.NewError(oauth.AccessDenied, "Sign in again and retry from your account page."))
		return
	}
	if err := s.store.RevokeClient(r.Context(), sess.UserID, r.PostForm.Get("client_id"), s.now()); err != nil {
		s.writeHTMLError(w, r, http.StatusServiceUnavailable, err)
		return
	}
	http.Redirect(w, r, s.base+"/account", http.StatusSeeOther)
}
