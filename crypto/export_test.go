package crypto

// RemarshalHeader serialises a parsed header again from its fields alone
// (body and authentication section), for the fuzz test's malleability
// property: h is not changed.
func RemarshalHeader(h *Header) ([]byte, error) {
	c := *h
	body, err := c.marshalBody()
	if err != nil {
		return nil, err
	}
	return append(body, c.marshalAuth()...), nil
}
