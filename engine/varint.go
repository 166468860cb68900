package engine

// varintReader reads the unsigned and zig-zag signed varints that the
// stamp and parse-cache encodings are made of, from a string. A read past
// the end, or a varint over 64 bits, sets bad and returns 0, so decoders
// check once at the end instead of after every field.
type varintReader struct {
	s   string
	pos int
	bad bool
}

func (d *varintReader) uint() uint64 {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if d.pos >= len(d.s) {
			break
		}
		c := d.s[d.pos]
		d.pos++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	d.bad = true
	return 0
}

// sint reads a zig-zag encoded signed varint.
func (d *varintReader) sint() int64 {
	u := d.uint()
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}
