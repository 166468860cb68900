//go:build !mlbuild_nogcs

package remote

// gs:// buckets. The Google Cloud Storage client brings gRPC and xDS with
// it, which cost a few milliseconds at every process start; build with
// -tags mlbuild_nogcs to leave it out.
import _ "gocloud.dev/blob/gcsblob"
