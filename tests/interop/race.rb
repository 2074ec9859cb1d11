# The Ruby side of the interop race suite (tests/interop/test_ruby_race.py): the real Ruby Scout runs jobs of a
# small workflow of ours while the Python plug-in runs the same jobs.
#
#   ruby -I<scout-essentials/lib> -I<scout-gear/lib> race.rb
#
# It reads one JSON command per line on stdin and answers one JSON line on stdout:
#   {"cmd":"run","t0":EPOCH,"jobs":[{"task":"work","id":"t1_j00","offset":0.1},...],"duration":0.3}
#       forks one child per job at t0 + offset, which runs Race.job(task, id); answers when all have ended,
#       with each child's pid and exit status, in the order of the jobs (a job may be listed twice: two Ruby
#       processes racing for it); children killed by the test report signal 9
#   {"cmd":"load","jobs":[{"task":"work","id":"t1_j00"},...]}   what Ruby loads for each job (no run)
#   {"cmd":"rewrite","jobs":[...]}   what Step#run's ensure block does in a process that only waited on the
#       lock: merge_info status done, end now (the timing rewrite a second Ruby waiter makes)
# Each task body appends "ruby <task> <id> <pid> start" / "... end" to $RACE_LOG.
require 'scout/workflow'
require 'json'

$stdout.sync = true

module Race
  extend Workflow

  def self.body_log(task, id, event)
    File.open(ENV.fetch('RACE_LOG'), 'a') { |f| f.write("ruby #{task} #{id} #{Process.pid} #{event}\n") }
  end

  input :id, :string, 'job id', nil, jobname: true
  task :work => :string do |id|
    Race.body_log('work', id, 'start')
    sleep ENV.fetch('RACE_DURATION', '0.3').to_f
    Race.body_log('work', id, 'end')
    "v:#{id}"
  end

  dep :work
  input :id, :string, 'job id', nil, jobname: true
  task :top => :string do |id|
    Race.body_log('top', id, 'start')
    sleep ENV.fetch('RACE_DURATION', '0.3').to_f
    Race.body_log('top', id, 'end')
    "top:" + step(:work).load
  end
end

def job_of(spec)
  Race.job(spec['task'].to_sym, spec['id'], id: spec['id'])
end

$stdin.each_line do |line|
  command = JSON.parse(line)
  case command['cmd']
  when 'run'
    ENV['RACE_DURATION'] = command.fetch('duration', 0.3).to_s
    t0 = command.fetch('t0').to_f
    children = command['jobs'].map do |spec|
      pid = Process.fork do
        wait = t0 + spec.fetch('offset', 0).to_f - Time.now.to_f
        sleep wait if wait > 0
        begin
          job_of(spec).run
          exit! 0
        rescue Exception => e
          $stderr.puts "#{spec['id']}: #{e.class}: #{e.message}"
          exit! 1
        end
      end
      [spec, pid]
    end
    $stdout.puts({ cmd: 'forked', pids: children.map { |spec, pid| ["#{spec['task']}/#{spec['id']}", pid] } }.to_json)
    ended = children.map do |spec, pid|
      _, status = Process.wait2(pid)
      ["#{spec['task']}/#{spec['id']}", { pid: pid, exit: status.exitstatus, signal: status.termsig }]
    end
    $stdout.puts({ cmd: 'run', ended: ended }.to_json)
  when 'load'
    loaded = command['jobs'].map do |spec|
      job = job_of(spec)
      ["#{spec['task']}/#{spec['id']}", { path: job.path.to_s, done: job.done?, status: job.status.to_s,
                     value: job.done? ? job.load : nil }]
    end
    $stdout.puts({ cmd: 'load', jobs: loaded.to_h }.to_json)
  when 'rewrite'
    command['jobs'].each { |spec| job_of(spec).merge_info(status: :done, end: Time.now) }
    $stdout.puts({ cmd: 'rewrite' }.to_json)
  when 'quit'
    break
  end
end
