# The AWS SDK for Ruby (Debian's ruby-aws-sdk-core), unmodified: its default credential chain,
# which in a pod without keys reaches the EC2 metadata service (InstanceProfileCredentials, with
# an IMDSv2 token it caches).
#
# One process, many fetches: every line on standard input refreshes the credentials (refresh!)
# and, with STS_ENDPOINT set, asks STS who they belong to. One JSON object per line on standard
# output: {"access_key": ..., "arn": ...} or {"error": ...}.
require 'json'
require 'aws-sdk-core'

$stdout.sync = true
credentials = nil
STDIN.each_line do
  begin
    credentials ||= Aws::CredentialProviderChain.new.resolve
    raise 'no credentials from the default chain' if credentials.nil?
    credentials.refresh! if credentials.respond_to?(:refresh!)
    value = credentials.credentials
    raise 'no credentials' if value.nil? || value.access_key_id.nil?
    result = { 'access_key' => value.access_key_id, 'provider' => credentials.class.name }
    endpoint = ENV['STS_ENDPOINT']
    if endpoint && !endpoint.empty?
      sts = Aws::STS::Client.new(region: 'us-east-1', endpoint: endpoint, credentials: credentials)
      result['arn'] = sts.get_caller_identity.arn
    end
    puts JSON.generate(result)
  rescue StandardError => e
    puts JSON.generate('error' => "#{e.class}: #{e.message}")
  end
end
