package kapi

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Response is a completed HTTP exchange with its body read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// DataID decodes the JSON:API primary resource's id ("data.id"), e.g. the
// job id a bulk create returns with 202.
func (r *Response) DataID() (string, error) {
	var doc struct {
		Data *struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		return "", fmt.Errorf("decode data.id of %d response: %w", r.Status, err)
	}
	if doc.Data == nil || doc.Data.ID == "" {
		return "", fmt.Errorf("decode data.id of %d response: no data.id", r.Status)
	}
	return doc.Data.ID, nil
}
