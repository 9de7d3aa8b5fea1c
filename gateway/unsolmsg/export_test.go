package unsolmsg

// BatchesLent is how many batches the server's streams hold now.
func (s *Server) BatchesLent() int64 { return s.batches.lent.Load() }
