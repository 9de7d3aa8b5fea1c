package protocol

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"sort"
)

// SDElement is one SD-ELEMENT of an RFC 5424 message's STRUCTURED-DATA:
// its SD-ID and its parameters in the order the message gives them.
type SDElement struct {
	ID     string
	Params []SDParam
}

// SDParam is one SD-PARAM: a PARAM-NAME and its PARAM-VALUE with the
// escapes undone (`\"`, `\\` and `\]` read as `"`, `\` and `]`; a backslash
// before any other character is kept, RFC 5424 section 6.3.3). A name may
// come more than once in one element (RFC 5424 allows it, e.g. the origin
// element's ip).
type SDParam struct {
	Name, Value string
}

// StructuredData is an event's structured data: the SD-ELEMENTs in message
// order. It is a []SDElement with the JSON encoding below (encoding/json
// would write a list of objects with ID and Params keys).
//
// # JSON
//
// One object, a key for each element (its SD-ID) in element order; its
// value an object, a key for each parameter name in the order the names
// first occur in the element, whose value is a string, or, for a name the
// element gives more than once, an array of its values in element order:
//
//	{"exampleSDID@32473":{"iut":"3","eventSource":"Application"},
//	 "origin":{"ip":["192.0.2.1","192.0.2.129"],"software":"rsyslogd"}}
//
// StructuredData → JSON → StructuredData gives the same elements, except
// that the values of a repeated name come back together at its first
// place: [origin ip="a" x="b" ip="c"] comes back as ip="a" ip="c" x="b"
// (the order of the names and the order of each name's values are kept;
// the order between values of different names is not, which nothing in
// RFC 5424 gives a meaning). So structured data read from JSON encodes to
// JSON that reads back the same, and JSON that this encoding wrote reads
// back and encodes to the same bytes. Read from other JSON, a key repeated
// in one element's object is taken as the name's further values (as if in
// an array) and a one-element array as a single value. An SD-ID that
// occurs twice (RFC 5424 forbids it; the syslog parser rejects such
// structured data) is written as two keys of the same name and read back
// as two elements. The disk store's journal keeps the exact order.
type StructuredData []SDElement

// MaxSDName is the most bytes in an SD-NAME (an SD-ID or a PARAM-NAME).
const MaxSDName = 32

// ValidSDName reports whether s is an SD-NAME of RFC 5424 (section 6.3):
// 1 to 32 printable US-ASCII characters but '=', space, ']' and '"'.
func ValidSDName(s string) bool {
	if len(s) == 0 || len(s) > MaxSDName {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !IsSDNameByte(s[i]) {
			return false
		}
	}
	return true
}

// IsSDNameByte reports whether c may be part of an SD-NAME.
func IsSDNameByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != '=' && c != ']' && c != '"'
}

// AppendStructuredData appends sd in its RFC 5424 form: "-" when it has no
// element, else each element as [SD-ID SP NAME="VALUE" ...], with '"', '\'
// and ']' in values escaped. Names are written as they are: they are
// valid SD-NAMEs when sd came from the syslog parser.
func AppendStructuredData(b []byte, sd []SDElement) []byte {
	if len(sd) == 0 {
		return append(b, '-')
	}
	for _, el := range sd {
		b = append(b, '[')
		b = append(b, el.ID...)
		for _, p := range el.Params {
			b = append(b, ' ')
			b = append(b, p.Name...)
			b = append(b, '=', '"')
			for i := 0; i < len(p.Value); i++ {
				switch c := p.Value[i]; c {
				case '"', '\\', ']':
					b = append(b, '\\', c)
				default:
					b = append(b, c)
				}
			}
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	return b
}

// Size is an estimate of the memory sd holds (for Event.Size).
func (sd StructuredData) Size() int {
	n := 0
	for _, el := range sd {
		n += 40 + len(el.ID) // an SDElement is 40 bytes
		for _, p := range el.Params {
			n += 32 + len(p.Name) + len(p.Value)
		}
	}
	return n
}

// Get returns the values of the parameter name of the element id, in
// element order (every element with that ID, should there be several).
func (sd StructuredData) Get(id, name string) []string {
	var vs []string
	for _, el := range sd {
		if el.ID != id {
			continue
		}
		for _, p := range el.Params {
			if p.Name == name {
				vs = append(vs, p.Value)
			}
		}
	}
	return vs
}

// MarshalJSON implements json.Marshaler (see StructuredData, "JSON").
func (sd StructuredData) MarshalJSON() ([]byte, error) {
	return appendSDJSON(nil, sd), nil
}

// smallElement is the most parameters of an element for which
// appendSDJSON finds repeated names by comparing each name with those
// before it; a larger element uses a map, so that the time stays linear.
const smallElement = 16

// appendSDJSON appends sd's JSON form. It allocates only for an element of
// more than smallElement parameters.
func appendSDJSON(b []byte, sd []SDElement) []byte {
	b = append(b, '{')
	for i, el := range sd {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, el.ID)
		b = append(b, ':')
		b = appendSDParamsJSON(b, el.Params)
	}
	return append(b, '}')
}

// appendSDParamsJSON appends an element's parameters as a JSON object.
func appendSDParamsJSON(b []byte, ps []SDParam) []byte {
	// next[i] is the index of the next parameter with ps[i]'s name, or -1;
	// later[i] says an earlier parameter has ps[i]'s name.
	var nextBuf [smallElement]int32
	var laterBuf [smallElement]bool
	next, later := nextBuf[:0], laterBuf[:0]
	if len(ps) > smallElement {
		next, later = make([]int32, 0, len(ps)), make([]bool, 0, len(ps))
	}
	for range ps {
		next, later = append(next, -1), append(later, false)
	}
	if len(ps) <= smallElement {
		for i := 1; i < len(ps); i++ {
			for j := i - 1; j >= 0; j-- {
				if ps[j].Name == ps[i].Name {
					next[j], later[i] = int32(i), true
					break
				}
			}
		}
	} else {
		last := make(map[string]int32, len(ps))
		for i := range ps {
			if j, ok := last[ps[i].Name]; ok {
				next[j], later[i] = int32(i), true
			}
			last[ps[i].Name] = int32(i)
		}
	}
	b = append(b, '{')
	first := true
	for i := range ps {
		if later[i] {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, ps[i].Name)
		b = append(b, ':')
		if next[i] < 0 {
			b = appendString(b, ps[i].Value)
			continue
		}
		b = append(b, '[')
		for j := int32(i); j >= 0; j = next[j] {
			if j != int32(i) {
				b = append(b, ',')
			}
			b = appendString(b, ps[j].Value)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// UnmarshalJSON implements json.Unmarshaler (see StructuredData, "JSON").
// It keeps the order of the keys, which decoding into maps would lose. JSON
// null leaves sd as it is; an empty object makes it nil.
//
// It reads data twice: once to check it and count its elements and
// parameters, then to build them, all the elements in one slice and all
// the parameters in another. Appending them as they come would allocate
// five times as much again for a large element (append grows a large
// slice by a quarter at a time): a peer's frame of 1 MiB of `"",` would
// have been 100 MB.
func (sd *StructuredData) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		return nil
	}
	count := sdParser{d: frameDecoder{b: data}}
	if err := count.parse(); err != nil {
		return err
	}
	if count.elements == 0 {
		*sd = nil
		return nil
	}
	build := sdParser{d: frameDecoder{b: data}, build: true,
		els: make(StructuredData, 0, count.elements), params: make([]SDParam, 0, count.nparams)}
	if err := build.parse(); err != nil {
		return err // not reached: the count read the same data
	}
	*sd = build.els
	return nil
}

// sdParser reads the JSON form of structured data: it counts its elements
// and parameters, and with build set builds them into els and params
// (made with room for all of them).
type sdParser struct {
	d                 frameDecoder
	build             bool
	elements, nparams int
	els               StructuredData
	params            []SDParam
}

// parse reads the structured data.
func (p *sdParser) parse() error {
	d := &p.d
	if err := p.want('{'); err != nil {
		return err
	}
	if d.space(); !d.next('}') {
		for {
			id, err := p.string()
			if err != nil {
				return err
			}
			if err := p.element(id); err != nil {
				return err
			}
			if more, err := p.more('}'); err != nil {
				return err
			} else if !more {
				break
			}
		}
	}
	if d.space(); d.i != len(d.b) {
		return fmt.Errorf("%w: data after the object at offset %d", ErrBadSD, d.i)
	}
	return nil
}

// element reads the object of the element id, after its key.
func (p *sdParser) element(id string) error {
	d := &p.d
	if err := p.want(':'); err != nil {
		return err
	}
	if err := p.want('{'); err != nil {
		return err
	}
	start := len(p.params)
	if d.space(); !d.next('}') {
		for {
			name, err := p.string()
			if err != nil {
				return err
			}
			if err := p.want(':'); err != nil {
				return err
			}
			if d.space(); d.next('[') {
				if d.space(); !d.next(']') {
					for {
						if err := p.param(name); err != nil {
							return err
						}
						if more, err := p.more(']'); err != nil {
							return err
						} else if !more {
							break
						}
					}
				}
			} else if err := p.param(name); err != nil {
				return err
			}
			if more, err := p.more('}'); err != nil {
				return err
			} else if !more {
				break
			}
		}
	}
	p.elements++
	if p.build {
		el := SDElement{ID: id}
		if len(p.params) > start {
			el.Params = groupParams(p.params[start:len(p.params):len(p.params)])
		}
		p.els = append(p.els, el)
	}
	return nil
}

// param reads a value of the parameter name.
func (p *sdParser) param(name string) error {
	if p.d.space(); p.d.i >= len(p.d.b) || p.d.b[p.d.i] != '"' {
		return fmt.Errorf("%w: a parameter's value is not a string or an array of strings at offset %d", ErrBadSD, p.d.i)
	}
	v, err := p.string()
	if err != nil {
		return err
	}
	p.nparams++
	if p.build {
		p.params = append(p.params, SDParam{Name: name, Value: v})
	}
	return nil
}

// string reads a string: while counting, only checks it.
func (p *sdParser) string() (string, error) {
	d := &p.d
	d.space()
	at := d.i
	if !p.build {
		if d.next('"') {
			if end := scanJSONString(d.b, d.i); end >= 0 {
				d.i = end
				return "", nil
			}
		}
	} else if s, ok := d.string(); ok {
		return s, nil
	}
	return "", fmt.Errorf("%w: want a string at offset %d", ErrBadSD, at)
}

// want reads the byte c.
func (p *sdParser) want(c byte) error {
	if p.d.space(); !p.d.next(c) {
		return fmt.Errorf("%w: want %q at offset %d", ErrBadSD, c, p.d.i)
	}
	return nil
}

// more reads a comma (more follows) or end (it does not).
func (p *sdParser) more(end byte) (bool, error) {
	switch p.d.space(); {
	case p.d.next(','):
		return true, nil
	case p.d.next(end):
		return false, nil
	}
	return false, fmt.Errorf("%w: want ',' or %q at offset %d", ErrBadSD, end, p.d.i)
}

// groupParams moves the values of a name that an element gave more than
// once apart (a key repeated in JSON) to the place of its first, as an
// array keeps them, in place. It works on the runs of parameters of one
// name, finding the names again with a hash table of its own (a plain
// list for a few): in time linear in the element's size (n log n when
// names are repeated apart) and with a few bytes a run, where a map of
// the names, the way it first went, took some sixty bytes a parameter.
func groupParams(ps []SDParam) []SDParam {
	nruns := 0
	for i := range ps {
		if i == 0 || ps[i].Name != ps[i-1].Name {
			nruns++
		}
	}
	if nruns < 3 { // a name repeated apart makes three runs at least
		return ps
	}
	names := newRunNames(ps)
	apart := false
	for i := 0; i < len(ps) && !apart; i++ {
		apart = (i == 0 || ps[i].Name != ps[i-1].Name) && names.first(i) != i
	}
	if !apart {
		return ps
	}

	// Each run, and where it goes: after the runs of the names before its
	// own first came, and after the runs of its name before it.
	names = newRunNames(ps)
	runs := make([]sdRun, 0, nruns)
	for i := range ps {
		if i > 0 && ps[i].Name == ps[i-1].Name {
			continue
		}
		first := int32(names.first(i))
		lead := sort.Search(len(runs), func(k int) bool { return runs[k].start >= first })
		runs = append(runs, sdRun{start: int32(i), lead: int32(lead)})
	}
	end := func(k int) int32 { // where run k ends
		if k+1 < len(runs) {
			return runs[k+1].start
		}
		return int32(len(ps))
	}
	for k, r := range runs {
		runs[r.lead].next += end(k) - r.start // for now, the name's count
	}
	at := int32(0)
	for k := range runs {
		if runs[k].lead == int32(k) {
			runs[k].next, at = at, at+runs[k].next
		}
	}
	for k := range runs {
		r := &runs[k]
		r.dest = runs[r.lead].next
		runs[r.lead].next += end(k) - r.start
	}

	// Each parameter to its place, following the cycles of the
	// permutation; done marks the places filled.
	dest := func(i int) int {
		k := sort.Search(len(runs), func(k int) bool { return runs[k].start > int32(i) }) - 1
		return int(runs[k].dest) + i - int(runs[k].start)
	}
	done := make([]uint64, (len(ps)+63)/64)
	for p := range ps {
		if done[p/64]&(1<<(p%64)) != 0 {
			continue
		}
		x := ps[p] // the parameter on its way, from i
		for i := p; ; {
			j := dest(i)
			x, ps[j] = ps[j], x
			done[j/64] |= 1 << (j % 64)
			if j == p {
				break
			}
			i = j
		}
	}
	return ps
}

// sdRun is a run of parameters of one name, from ps[start] to the next
// run. lead is the index of the run its name first came in (its own, when
// it did); dest is where the run goes; next, of a name's first run, where
// its name's next run goes.
type sdRun struct {
	start, lead, dest, next int32
}

// runNames finds the run a name first came in, among the runs of
// parameters of one name in ps: in a list of the names seen while they
// are few, then in an open-addressing hash table (at most half full,
// seeded afresh so that no set of names makes it slow).
type runNames struct {
	ps    []SDParam
	list  []int32 // the first parameter of each name's first run
	table []int32 // or a slot for each: its index+1; 0 for an empty slot
	names int     // the names in table
	seed  maphash.Seed
	buf   [smallElement]int32
}

func newRunNames(ps []SDParam) *runNames {
	n := &runNames{ps: ps}
	n.list = n.buf[:0]
	return n
}

// first returns the first parameter of the first run with ps[i]'s name,
// which starts a run: i when its name is new, which is noted.
func (n *runNames) first(i int) int {
	name := n.ps[i].Name
	if n.table == nil {
		for _, j := range n.list {
			if n.ps[j].Name == name {
				return int(j)
			}
		}
		if len(n.list) < cap(n.list) {
			n.list = append(n.list, int32(i))
			return i
		}
		n.seed = maphash.MakeSeed()
		n.grow(4 * smallElement)
		for _, j := range n.list {
			n.insert(j)
		}
	}
	mask := uint64(len(n.table) - 1)
	for h := maphash.String(n.seed, name) & mask; ; h = (h + 1) & mask {
		j := n.table[h] - 1
		if j < 0 {
			break
		}
		if n.ps[j].Name == name {
			return int(j)
		}
	}
	if 2*(n.names+1) > len(n.table) {
		n.grow(2 * len(n.table))
	}
	n.insert(int32(i))
	return i
}

// grow makes the table size slots (a power of two), the names in it kept.
func (n *runNames) grow(size int) {
	old := n.table
	n.table, n.names = make([]int32, size), 0
	for _, e := range old {
		if e != 0 {
			n.insert(e - 1)
		}
	}
}

// insert puts the name of ps[i], not in the table, in it.
func (n *runNames) insert(i int32) {
	mask := uint64(len(n.table) - 1)
	h := maphash.String(n.seed, n.ps[i].Name) & mask
	for n.table[h] != 0 {
		h = (h + 1) & mask
	}
	n.table[h] = i + 1
	n.names++
}
