package worker

// Spec is a worker as clients see it: which image computations run on,
// its measurement, and the versions a script gets.
type Spec struct {
	Name        string            `json:"name"`
	Measurement string            `json:"measurement"`         // see Measurement
	KitDigest   string            `json:"kit_digest"`          // of the kit beside the image (see Kit)
	Server      string            `json:"server_digest"`       // hex SHA-256 of the cleanroom binary serving it
	Suite       string            `json:"suite"`               // Debian suite, e.g. trixie
	Debian      string            `json:"debian_version"`      // e.g. 13.1
	Python      string            `json:"python_version"`      // e.g. 3.13.5
	R           string            `json:"r_version,omitempty"` // e.g. 4.5.0, in images with R
	Libraries   map[string]string `json:"libraries"`           // Python module -> the version it reports
	Packages    map[string]string `json:"packages"`            // listed Debian package -> installed version
}
