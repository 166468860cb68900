//go:build !mlbuild_noazure

package remote

// azblob:// containers; build with -tags mlbuild_noazure to leave the
// Azure SDK out.
import _ "gocloud.dev/blob/azureblob"
