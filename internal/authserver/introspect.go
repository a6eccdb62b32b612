package authserver

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/mcpauth/mcpauth/cimd"
	"github.com/mcpauth/mcpauth/internal/token"
	"github.com/mcpauth/mcpauth/oauth"
)

// introspection is the RFC 7662 §2.2 response.
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Aud       string `json:"aud,omitempty"`
	Iss       string `json:"iss,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Jti       string `json:"jti,omitempty"`
	TokenType string `json:"token_type,omitempty"`
}

// handleIntrospect is RFC 7662 for resource servers: only clients configured
// with introspection rights may call it. A token is active only while its
// family is not revoked and its client is not blocked.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	form, err := parseBackChannelForm(w, r)
	if err != nil {
		s.writeJSONError(w, r, err)
		return
	}
	c, err := s.authenticateClient(r, form)
	if err != nil {
		s.writeJSONError(w, r, err)
		return
	}
	if !c.Introspect || c.AuthMethod == "none" {
		s.writeJSONError(w, r, oauth.NewError(oauth.InvalidClient, "Client %s may not introspect tokens; configure it with introspect: true and a secret.", truncate(c.ID, 200)))
		return
	}
	if form.Get("token") == "" {
		s.writeJSONError(w, r, oauth.NewError(oauth.InvalidRequest, "token is required (RFC 7662 section 2.1)."))
		return
	}
	res, err := s.introspect(r.Context(), form.Get("token"))
	if err != nil {
		s.writeJSONError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(res)
}

func (s *Server) introspect(ctx context.Context, tok string) (introspection, error) {
	inactive := introspection{Active: false}
	now := s.now()
	if strings.HasPrefix(tok, token.RefreshPrefix) {
		rt, fam, err := s.store.GetRefreshToken(ctx, token.Hash(tok))
		if err != nil || !rt.UsedAt.IsZero() || !fam.RevokedAt.IsZero() || !now.Before(rt.ExpiresAt) || !now.Before(fam.ExpiresAt) || s.clientBlocked(fam.ClientID) {
			return inactive, nil
		}
		return introspection{Active: true, Scope: fam.Scopes, ClientID: fam.ClientID, Sub: fam.UserID, Aud: fam.Resource,
			Iss: s.issuer, Exp: rt.ExpiresAt.Unix(), Iat: rt.CreatedAt.Unix(), TokenType: "refresh_token"}, nil
	}
	claims, err := s.keys.VerifyAccessToken(tok, now)
	if err != nil || claims.Issuer != s.issuer {
		return inactive, nil
	}
	revoked, err := s.store.FamilyRevoked(ctx, claims.FamilyID)
	if err != nil || revoked || s.clientBlocked(claims.ClientID) {
		return inactive, nil
	}
	return introspection{Active: true, Scope: claims.Scope, ClientID: claims.ClientID, Sub: claims.Subject,
		Aud: claims.Audience, Iss: claims.Issuer, Exp: claims.ExpiresAt.Unix(), Iat: claims.IssuedAt.Unix(),
		Jti: claims.JTI, TokenType: "Bearer"}, nil
}

// clientBlocked applies the current trust policy without any fetch.
func (s *Server) clientBlocked(clientID string) bool {
	id, err := s.resolver.ClientID(clientID)
	if err != nil {
		return false // not a CIMD client
	}
	tier, _ := s.resolver.Policy().Evaluate(id)
	return tier == cimd.TierBlocked
}

// handleRevoke is RFC 7009: the client revokes one of its own tokens; the
// whole family goes. Unknown tokens get 200 as well (RFC 7009 §2.2).
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	form, err := parseBackChannelForm(w, r)
	if err != nil {
		s.writeJSONError(w, r, err)
		return
	}
	c, err := s.authenticateClient(r, form)
	if err != nil {
		s.writeJSONError(w, r, err)
		return
	}
	tok := form.Get("token")
	if tok == "" {
		s.writeJSONError(w, r, oauth.NewError(oauth.InvalidRequest, "token is required."))
		return
	}
	familyID := ""
	if strings.HasPrefix(tok, token.RefreshPrefix) {
		if _, fam, err := s.store.GetRefreshToken(r.Context(), token.Hash(tok)); err == nil && fam.ClientID == c.ID {
			familyID = fam.ID
		}
	} else if claims, err := s.keys.VerifyAccessToken(tok, s.now()); err == nil && claims.ClientID == c.ID {
		familyID = claims.FamilyID
	}
	if familyID != "" {
		s.revokeFamily(r, familyID, "revoked by client")
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}
