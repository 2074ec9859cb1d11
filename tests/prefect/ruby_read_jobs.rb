# Asks the real Ruby Scout to run jobs that may already be on disk, and reports what it did, one JSON line per job.
# ruby -I<scout-essentials/lib> -I<scout-gear/lib> ruby_read_jobs.rb WORKFLOW_FILE... -- Workflow:task...
require 'scout/workflow'
require 'json'

split = ARGV.index('--')
ARGV[0...split].each { |file| require file }

def describe(value)
  return { tsv: { key_field: value.key_field, fields: value.fields, data: Hash[value].inspect } } if value.respond_to?(:key_field) && value.is_a?(Hash)
  { value: value.inspect }
end

def snapshot(job)
  [job.info_file, job.path].map { |f| File.exist?(f) ? File.binread(f) : nil }
end

ARGV[(split + 1)..].each do |spec|
  workflow, task = spec.split(':')
  job = Kernel.const_get(workflow).job(task.to_sym)
  before = snapshot(job)
  row = { job: spec, path: job.path, status: job.status.to_s, done: job.done? }
  begin
    result = job.run
    row.merge!(describe(job.done? ? job.load : result))
  rescue Exception => e
    row[:raised] = e.class.to_s
  end
  row[:status_after] = job.status.to_s
  row[:untouched] = before == snapshot(job)
  puts row.to_json
end
