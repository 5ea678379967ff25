package emulator

// RevokeToken makes token stop authenticating, as when its owner deletes
// a personal access token on synapse.org: calls with it get 401 "Invalid
// access token". It reports whether the token was known. AddUser with the
// same user and token restores it.
func (s *Server) RevokeToken(token string) bool {
	th := hashToken(token)
	s.mu.Lock()
	u := s.tokens[th]
	if u == nil {
		s.mu.Unlock()
		return false
	}
	delete(s.tokens, th)
	for i, t := range u.Tokens {
		if t == th {
			u.Tokens = append(u.Tokens[:i], u.Tokens[i+1:]...)
			break
		}
	}
	g := s.changedLocked()
	s.mu.Unlock()
	if err := s.commit(g); err != nil {
		s.log.Error("saving state", "err", err)
	}
	return true
}
