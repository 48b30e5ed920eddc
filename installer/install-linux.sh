#!/usr/bin/env bash
# Install the built one-folder app for the current user on Linux, with a desktop entry and
# icon, so it appears in the applications menu and opens photos ("Open with").
#
#   bash installer/install-linux.sh [BUNDLE_DIR]     # from a checkout; default: dist/StudioCatalog
#   bash installer/install-linux.sh --uninstall
#   ./install-linux.sh                                # from an unpacked bundle (build.sh puts a copy there)
#
# Installs to ~/.local/opt/StudioCatalog (or $PREFIX/opt/StudioCatalog when PREFIX is set, e.g.
# PREFIX=/usr/local as root for every user), the entry to $XDG_DATA_HOME/applications and the
# icon to the hicolor theme (256 and 512 px). No root rights needed for the per-user install.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -x "$here/StudioCatalog" ]; then           # the copy inside the bundle folder
  DEFAULT_BUNDLE="$here"; RES="$here/_internal/resources"
else                                            # installer/ of a checkout
  DEFAULT_BUNDLE="$here/../dist/StudioCatalog"; RES="$here/../resources"
fi
ICON_NAME=studio-catalog
DATA_HOME=${XDG_DATA_HOME:-$HOME/.local/share}
if [ -n "${PREFIX:-}" ]; then
  APP_DIR="$PREFIX/opt/StudioCatalog"; DATA_HOME="$PREFIX/share"
else
  APP_DIR="$HOME/.local/opt/StudioCatalog"
fi
ENTRY="$DATA_HOME/applications/$ICON_NAME.desktop"
ICONS="$DATA_HOME/icons/hicolor"

refresh() {
  command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$DATA_HOME/applications" || true
  command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t -f "$ICONS" 2>/dev/null || true
}

if [ "${1:-}" = "--uninstall" ]; then
  rm -f "$ENTRY" "$ICONS/256x256/apps/$ICON_NAME.png" "$ICONS/512x512/apps/$ICON_NAME.png"
  rm -rf "$APP_DIR"
  refresh
  echo "removed $APP_DIR and its desktop entry"
  exit 0
fi

BUNDLE=$(cd "${1:-$DEFAULT_BUNDLE}" 2>/dev/null && pwd || echo "${1:-$DEFAULT_BUNDLE}")
if [ "$BUNDLE" = "$APP_DIR" ]; then
  echo "already installed at $APP_DIR" >&2
  exit 1
fi
if [ ! -x "$BUNDLE/StudioCatalog" ]; then
  echo "no built app at $BUNDLE (run: bash installer/build.sh)" >&2
  exit 1
fi
mkdir -p "$(dirname "$APP_DIR")"
staging="$APP_DIR.new.$$"
rm -rf "$staging"
cp -a "$BUNDLE" "$staging"
rm -rf "$APP_DIR"
mv "$staging" "$APP_DIR"

install -d "$ICONS/256x256/apps" "$ICONS/512x512/apps" "$(dirname "$ENTRY")"
install -m 644 "$RES/icons/studio-catalog-256.png" "$ICONS/256x256/apps/$ICON_NAME.png"
install -m 644 "$RES/icons/studio-catalog.png" "$ICONS/512x512/apps/$ICON_NAME.png"

# The entry from resources/, with Exec pointing at the installed executable.
exe="$APP_DIR/StudioCatalog"
case "$exe" in *" "*) exec_line="Exec=\"$exe\" %F" ;; *) exec_line="Exec=$exe %F" ;; esac
tmp="$ENTRY.tmp.$$"
sed -e "s|^Exec=.*|$exec_line|" -e "/^TryExec=/d" "$RES/studio-catalog.desktop" > "$tmp"
chmod 644 "$tmp"
mv "$tmp" "$ENTRY"
if command -v desktop-file-validate >/dev/null 2>&1; then
  desktop-file-validate "$ENTRY"
fi
refresh
echo "installed $APP_DIR; menu entry $ENTRY"
