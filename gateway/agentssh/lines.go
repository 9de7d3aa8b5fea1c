package agentssh

import "bytes"

// lineSplitter cuts one output stream into Outputs: a line at each '\n'
// (EOL true, the newline not included), a piece of maxLine bytes when a line
// grows longer than that (EOL false), and at the end whatever is left
// (EOL false). Every Output's Data is a fresh slice the callback may keep.
type lineSplitter struct {
	stream  int
	maxLine int
	partial []byte // bytes of the current line not yet emitted; < maxLine
}

// write splits p, calling emit for each complete line or full chunk.
func (s *lineSplitter) write(p []byte, emit func(Output)) {
	for len(p) > 0 {
		room := s.maxLine - len(s.partial)
		// A newline within room+1 bytes ends a line of at most maxLine.
		if i := bytes.IndexByte(p[:min(len(p), room+1)], '\n'); i >= 0 {
			s.emit(p[:i], true, emit)
			p = p[i+1:]
			continue
		}
		if len(p) <= room {
			s.partial = append(s.partial, p...)
			return
		}
		// maxLine bytes and the next one is not a newline: a chunk.
		s.emit(p[:room], false, emit)
		p = p[room:]
	}
}

// flush emits what is left of an unterminated line, if anything.
func (s *lineSplitter) flush(emit func(Output)) {
	if len(s.partial) > 0 {
		s.emit(nil, false, emit)
	}
}

// emit emits partial followed by tail, and empties partial.
func (s *lineSplitter) emit(tail []byte, eol bool, emit func(Output)) {
	data := make([]byte, 0, len(s.partial)+len(tail))
	data = append(append(data, s.partial...), tail...)
	s.partial = s.partial[:0]
	emit(Output{Stream: s.stream, Data: data, EOL: eol})
}
