package preview

import (
	"encoding/json"

	"github.com/vitehost/vitehost/preview/internal/request"
)

// This file is the shape in which the API decodes its request bodies. A
// file's content goes from the body, where it lies as a JSON string, to
// the bytes that will be written, through one string of that file at a
// time: the body's copy and the decoded files are what a request holds,
// never a string copy of every file besides.

// createBody is the body of POST {prefix}: a CreateRequest.
type createBody struct {
	Files       []wireFile      `json:"files"`
	PackageJSON json.RawMessage `json:"packageJson,omitempty"`
	SessionID   string          `json:"sessionId,omitempty"`
}

// updateBody is the body of POST {prefix}/{id}/update: an UpdateRequest.
type updateBody struct {
	Files       []wireFile      `json:"files"`
	Delete      []string        `json:"delete,omitempty"`
	PackageJSON json.RawMessage `json:"packageJson,omitempty"`
}

// wireFile is a File decoded as it is read.
type wireFile struct{ request.Sent }

// UnmarshalJSON decodes a File and then its content, keeping the decoded
// bytes only. A content that cannot be decoded is not an error of the
// JSON: request.Check reports it, in its turn.
func (f *wireFile) UnmarshalJSON(raw []byte) error {
	var v File
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	f.Name, f.SentLen = v.Name, len(v.Content)
	f.Data, f.Err = request.Decode(v.Name, v.Content, v.Encoding)
	return nil
}

// sent returns the decoded files of a request body.
func sent(files []wireFile) []request.Sent {
	out := make([]request.Sent, len(files))
	for i := range files {
		out[i] = files[i].Sent
	}
	return out
}
