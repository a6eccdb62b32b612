package authserver

import (
	"net/http"

	"github.com/mcpauth/mcpauth/oauth"
)

// handleRegister is the RFC 7591 endpoint; dynamic registration lands with
// the DCR work of issue #4 and is refused until then.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	s.writeJSONError(w, r, oauth.NewError(oauth.ErrInvalidClientMetadata, "Dynamic client registration is not implemented yet; use a client ID metadata document."))
}

// handleLogo serves a client's logo from this origin (SPEC C13, D5); until
// logo fetching lands it answers 404 and the consent page shows none.
func (s *Server) handleLogo(w http.ResponseWriter, r *http.Request) {
	http.NotFound(w, r)
}
