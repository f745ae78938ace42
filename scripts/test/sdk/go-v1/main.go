// The AWS SDK for Go v1 (Debian's golang-github-aws-aws-sdk-go-dev, what most kiam-era pods were
// built with), unmodified: its default credential chain, which in a pod without keys reaches the
// EC2 metadata service (IMDSv2 token cached for its TTL, as the SDK does).
//
// One process, many fetches: every line on standard input forces a fresh fetch of credentials
// (creds.Expire) and, with STS_ENDPOINT set, asks STS who they belong to. One JSON object per
// line on standard output: {"access_key": ..., "arn": ...} or {"error": ...}.
package main

import (
	"bufio"
	"encoding/json"
	"os"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/aws/session"
	"github.com/aws/aws-sdk-go/service/sts"
)

func main() {
	sess := session.Must(session.NewSession(&aws.Config{Region: aws.String("us-east-1")}))
	creds := sess.Config.Credentials
	out := json.NewEncoder(os.Stdout)
	input := bufio.NewScanner(os.Stdin)
	for input.Scan() {
		creds.Expire()
		value, err := creds.Get()
		if err != nil {
			out.Encode(map[string]string{"error": err.Error()})
			continue
		}
		result := map[string]string{"access_key": value.AccessKeyID, "provider": value.ProviderName}
		if endpoint := os.Getenv("STS_ENDPOINT"); endpoint != "" {
			client := sts.New(sess, &aws.Config{Endpoint: aws.String(endpoint)})
			identity, err := client.GetCallerIdentity(&sts.GetCallerIdentityInput{})
			if err != nil {
				result["error"] = err.Error()
			} else {
				result["arn"] = aws.StringValue(identity.Arn)
			}
		}
		out.Encode(result)
	}
}
