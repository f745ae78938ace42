// The AWS SDK for Go v2 (Debian's golang-github-aws-aws-sdk-go-v2-dev), unmodified: its default
// configuration, which in a pod without keys gets credentials from the EC2 metadata service (it
// asks for 300 s IMDSv2 tokens, needs the TTL response header and caches the token).
//
// One process, many fetches: every line on standard input drops the cached credentials
// (CredentialsCache.Invalidate) and fetches them again, then, with STS_ENDPOINT set, asks STS who
// they belong to. One JSON object per line: {"access_key": ..., "arn": ...} or {"error": ...}.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func main() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		panic(err)
	}
	out := json.NewEncoder(os.Stdout)
	input := bufio.NewScanner(os.Stdin)
	for input.Scan() {
		if cache, ok := cfg.Credentials.(*aws.CredentialsCache); ok {
			cache.Invalidate()
		}
		value, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			out.Encode(map[string]string{"error": err.Error()})
			continue
		}
		result := map[string]string{"access_key": value.AccessKeyID, "provider": value.Source}
		if endpoint := os.Getenv("STS_ENDPOINT"); endpoint != "" {
			client := sts.NewFromConfig(cfg, func(o *sts.Options) { o.EndpointResolver = sts.EndpointResolverFromURL(endpoint) })
			identity, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				result["error"] = err.Error()
			} else {
				result["arn"] = aws.ToString(identity.Arn)
			}
		}
		out.Encode(result)
	}
}
