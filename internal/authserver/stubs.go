package authserver

import (
	"net/http"
)

// handleLogo serves a client's logo from this origin (SPEC C13, D5); until
// logo fetching lands it answers 404 and the consent page shows none.
func (s *Server) handleLogo(w http.ResponseWriter, r *http.Request) {
	http.NotFound(w, r)
}
