#!/usr/bin/python3
"""Stand-in for the PEM web application's restart and health check (pem-settings lab, issue 16).

What it copies of the real one (pgAdmin 4; see WEBAPP.md): at start the web app runs config.py,
which does `from config_local import *`, takes CONFIG_DATABASE_URI, rewrites a leading
postgres:// or postgresql:// to postgresql+psycopg:// and opens it with SQLAlchemy 2 (the pinned
2.0.52 of webapp-consumer/vendor, with Debian's python3-psycopg). On an empty settings database it
creates its schema one table at a time, each committed on its own, with no lock: two web apps
that start together on an empty database break each other. An empty URI means the local SQLite
file, as in the real app.

  pem-web restart [--lazy] [--delay SECONDS] [--user USER] [--web-dir DIR]
      Stop (forget the last start), then start, as the web app's user (default www-data when run
      as root): read the URI; if the settings database holds all of the web app's tables, just
      start; if it holds none, create them one by one, SECONDS before each (default 0.3); then add the
      default preference row if it is missing (check, then insert: no unique constraint).
      --lazy: only stop; the app starts on its first request, i.e. the next `health`.
  pem-web health
      Exit 0 (printing the start record) if the app has started since its last restart; after a
      lazy restart, this is the first request: it starts the app and reports how that went.

Exit codes: 0 started; 1 cannot read the configuration or reach/use the database; 3 another web
app is creating the schema right now (some but not all tables present, or a table appeared
under us); 4 (health) not started. Messages on stderr start with "pem-web on HOST:".
State, per lab host (its own /tmp): /tmp/pem-web-standin/{started,pending,log}; `log` gets one
line per restart and per start attempt, in order, for tests to read."""
import argparse, json, os, pwd, re, runpy, socket, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
# The lab copies this file to <lab>/webapp/ and the web app's parser to <lab>/webapp-consumer/.
sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..", "webapp-consumer", "vendor")))
sys.dont_write_bytecode = True  # never leave __pycache__ beside config_local.py

STATE = "/tmp/pem-web-standin"
HOST = socket.gethostname()

# pgAdmin-like tables, in creation order (a later table references earlier ones).
TABLES = [
    ("alembic_version", "version_num VARCHAR(32) NOT NULL PRIMARY KEY"),
    ("role", "id SERIAL PRIMARY KEY, name VARCHAR(128) NOT NULL UNIQUE, description VARCHAR(256) NOT NULL"),
    ("user", "id SERIAL PRIMARY KEY, username VARCHAR(256) NOT NULL, email VARCHAR(256), "
             "password VARCHAR(256), active BOOLEAN NOT NULL, auth_source VARCHAR(16) NOT NULL DEFAULT 'internal'"),
    ("roles_users", 'user_id INTEGER REFERENCES "user"(id), role_id INTEGER REFERENCES role(id)'),
    ("servergroup", 'id SERIAL PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES "user"(id), name VARCHAR(128) NOT NULL'),
    ("server", 'id SERIAL PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES "user"(id), '
               "servergroup_id INTEGER NOT NULL REFERENCES servergroup(id), name VARCHAR(128) NOT NULL, "
               "host VARCHAR(1024), port INTEGER"),
    ("preferences", "id SERIAL PRIMARY KEY, cid INTEGER NOT NULL, name VARCHAR(256) NOT NULL"),
    ("setting", 'user_id INTEGER NOT NULL REFERENCES "user"(id), setting VARCHAR(256) NOT NULL, value TEXT, '
                "PRIMARY KEY (user_id, setting)"),
]
# No user_preferences: webapp-consumer/consumer.py creates a table of that name with its own columns.
SCHEMA_VERSION = "pemstandin0001"


class Failure(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".%03dZ" % (time.time() * 1000 % 1000)


def log(event):
    try:
        with open(os.path.join(STATE, "log"), "a") as f:
            f.write("%s %s pid=%d uid=%d %s\n" % (now(), HOST, os.getpid(), os.getuid(), event))
    except OSError:
        pass  # the log is for tests; a start does not depend on it


def remove(name):
    try:
        os.unlink(os.path.join(STATE, name))
    except FileNotFoundError:
        pass


def state_dir(user):
    """/tmp is the host's own and world-writable: use the directory only if root or the app's user owns it."""
    ok_owners = {0} | ({user.pw_uid} if user else set()) | {os.getuid()}
    try:
        st = os.lstat(STATE)
    except FileNotFoundError:
        os.mkdir(STATE, 0o755)
        st = os.lstat(STATE)
    if not os.path.isdir(STATE) or os.path.islink(STATE) or st.st_uid not in ok_owners:
        raise Failure(1, "%s is not a directory owned by root or the web app's user: refusing to use it" % STATE)
    if user and os.getuid() == 0 and st.st_uid != user.pw_uid:
        os.chown(STATE, user.pw_uid, user.pw_gid)
    # The log gets lines from root (restart) and from the app's user (start): the app's user owns it.
    try:
        fd = os.open(os.path.join(STATE, "log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
        if user and os.getuid() == 0:
            os.fchown(fd, user.pw_uid, user.pw_gid)
        os.close(fd)
    except OSError:
        pass


def app_user(name):
    """Who the web app runs as: www-data when started by root (as Apache's mod_wsgi would), else whoever we are."""
    if name is None:
        name = "www-data" if os.getuid() == 0 else None
    if name is None or name == pwd.getpwuid(os.getuid()).pw_name:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise Failure(1, "no user %r to run the web app as" % name)


def become(user):
    if user is None:
        return
    os.initgroups(user.pw_name, user.pw_gid)
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    os.environ["HOME"] = user.pw_dir
    os.environ["USER"] = os.environ["LOGNAME"] = user.pw_name
    os.chdir("/")


def database_uri(web_dir):
    """CONFIG_DATABASE_URI as the web app sees it: config.py, which star-imports config_local.py."""
    config_py = os.path.join(web_dir, "config.py")
    sys.path.insert(0, web_dir)
    try:
        if os.path.exists(config_py):
            cfg = runpy.run_path(config_py)
        else:
            cfg = runpy.run_path(os.path.join(web_dir, "config_local.py"))
    except Exception as e:  # what stops the real app at import: unreadable file, syntax error
        raise Failure(1, "cannot load the configuration in %s: %s: %s" % (web_dir, type(e).__name__, e))
    uri = cfg.get("CONFIG_DATABASE_URI", "")
    if not isinstance(uri, str):
        raise Failure(1, "CONFIG_DATABASE_URI is not a string: %r" % (uri,))
    return re.sub(r"^postgres(?:ql)?://", "postgresql+psycopg://", uri)


def present_tables(conn, sa):
    rows = conn.execute(sa.text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname = ANY(:names)"),
        {"names": [t for t, _ in TABLES]}).scalars().all()
    return [t for t, _ in TABLES if t in rows]


def start(web_dir, delay):
    """Start the web app: returns the start record; raises Failure."""
    uri = database_uri(web_dir)
    if uri == "":
        return {"settings": "sqlite", "created": 0}
    import sqlalchemy as sa
    try:
        engine = sa.create_engine(uri)
    except Exception as e:
        raise Failure(1, "SQLAlchemy cannot use CONFIG_DATABASE_URI: %s: %s" % (type(e).__name__, e))
    created = 0
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            where = c.execute(sa.text("SELECT coalesce(host(inet_server_addr()), 'socket') || ':' || current_setting('port')")).scalar()
            have = present_tables(c, sa)
            if have and len(have) < len(TABLES):
                raise Failure(3, "found %d of the web app's %d tables (%s): another web app is creating the schema "
                                 "right now; not starting on a half-made schema" % (len(have), len(TABLES), ", ".join(have)))
            if not have:
                log("creating the schema (%d tables, %.2f s before each, no lock)" % (len(TABLES), delay))
                for i, (name, columns) in enumerate(TABLES):
                    # A pause before each table, the first too: the real app's migrations do work
                    # between finding the database empty and creating a table. Two apps that start
                    # within that pause both find it empty, and one fails on a DDL error.
                    time.sleep(delay)
                    try:
                        c.execute(sa.text('CREATE TABLE "%s" (%s)' % (name, columns)))
                    except sa.exc.DBAPIError as e:
                        state = getattr(e.orig, "sqlstate", None)
                        first = str(e.orig).strip().splitlines()[0]
                        if state in ("42P07", "23505"):  # duplicate_table, unique_violation (pg_type race)
                            raise Failure(3, "CREATE TABLE %s failed after %d of %d tables: %s: another web app is "
                                             "creating the schema at the same time" % (name, i, len(TABLES), first))
                        raise Failure(1, "CREATE TABLE %s failed: %s" % (name, first))
                    created += 1
                c.execute(sa.text("INSERT INTO alembic_version VALUES (:v)"), {"v": SCHEMA_VERSION})
        with engine.begin() as c:  # default preferences, check then insert, as the real app does
            if not c.execute(sa.text("SELECT count(*) FROM preferences WHERE cid = 1 AND name = 'theme'")).scalar():
                c.execute(sa.text("INSERT INTO preferences (cid, name) VALUES (1, 'theme')"))
    except Failure:
        raise
    except sa.exc.DBAPIError as e:
        raise Failure(1, "database error: %s" % str(e.orig).strip().splitlines()[0])
    except Exception as e:
        raise Failure(1, "%s: %s" % (type(e).__name__, str(e).strip().splitlines()[0] if str(e).strip() else ""))
    finally:
        engine.dispose()
    return {"settings": where, "created": created}


def run_start(args, user):
    """Start as the app's user in a child process (so root keeps its rights for the state files)."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            become(user)
            record = start(args.web_dir, args.delay)
            record.update(host=HOST, at=now(), pid=os.getpid())
            with open(os.path.join(STATE, "started.tmp"), "w") as f:
                json.dump(record, f)
            os.replace(os.path.join(STATE, "started.tmp"), os.path.join(STATE, "started"))
            what = "schema present" if record["created"] == 0 else "created %d tables" % record["created"]
            if record["settings"] == "sqlite":
                what = "no CONFIG_DATABASE_URI: local SQLite settings"
            log("started (%s)" % what)
            print("pem-web on %s: started, settings in %s (%s)" % (HOST, record["settings"], what))
        except Failure as e:
            log("FAILED (exit %d): %s" % (e.code, e))
            print("pem-web on %s: FAILED to start: %s" % (HOST, e), file=sys.stderr)
            code = e.code
        except BaseException as e:  # never fall back into the parent's code
            print("pem-web on %s: FAILED to start: %s: %s" % (HOST, type(e).__name__, e), file=sys.stderr)
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def main():
    p = argparse.ArgumentParser(prog="pem-web", description="stand-in for the PEM web app's restart and health check")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("restart")
    r.add_argument("--lazy", action="store_true", help="only stop: start on the first request (the next health)")
    h = sub.add_parser("health")
    for q in (r, h):
        q.add_argument("--delay", type=float, default=0.3, help="seconds before each CREATE TABLE (default 0.3)")
        q.add_argument("--user", help="user the web app runs as (default www-data when run as root)")
        q.add_argument("--web-dir", default="/usr/edb/pem/web", help="directory of config.py and config_local.py")
    args = p.parse_args()
    try:
        user = app_user(args.user)
        state_dir(user)
    except Failure as e:
        print("pem-web on %s: %s" % (HOST, e), file=sys.stderr)
        return e.code
    if args.command == "restart":
        remove("started")
        if args.lazy:
            open(os.path.join(STATE, "pending"), "w").close()
            log("restart (lazy: starts on the first request)")
            print("pem-web on %s: restarted; the app starts on its first request" % HOST)
            return 0
        remove("pending")
        log("restart")
        return run_start(args, user)
    if os.path.exists(os.path.join(STATE, "started")):
        with open(os.path.join(STATE, "started")) as f:
            print("pem-web on %s: up %s" % (HOST, f.read().strip()))
        return 0
    if os.path.exists(os.path.join(STATE, "pending")):
        log("first request after a lazy restart")
        code = run_start(args, user)
        if code == 0:
            remove("pending")
        return code
    print("pem-web on %s: not running (no successful start since the last restart)" % HOST, file=sys.stderr)
    return 4


if __name__ == "__main__":
    sys.exit(main())
