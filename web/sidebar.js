// The side panels: the rooms list (rooms this tab is in, rooms the user may join, public rooms),
// the notices above the messages (invitations, removals) and the people panel (who is online
// here and in the user's other rooms). Rendering only: it reads the session's state; clicks go
// to the actions the wiring (app.js) passes in.

import { $, h } from "./dom.js";
import { MODERATOR_ROLES } from "./protocol.js";
import { kindIcon } from "./view.js";

const ui = {
  rooms: $("rooms"), publicSection: $("public-rooms-section"), publicRooms: $("public-rooms"),
  publicCount: $("public-count"), notices: $("notices"),
  presence: $("presence"), presenceCount: $("presence-count"),
  presenceMore: $("presence-more"), presenceRefresh: $("presence-refresh"),
  elsewhere: $("elsewhere"), elsewhereTitle: $("elsewhere-title"),
};

export class Sidebar {
  /** actions: activate, joinRoom, leaveRoom, invite, openDirect (each with a name), dismissInvitation, dismissRemoval. */
  constructor(session, actions) {
    this.session = session;
    this.actions = actions;
  }

  /** One sidebar entry: a room this tab is in (a tab), or one we may join (a join button). */
  sidebarItem(name, joined) {
    const s = this.session;
    const { visibility = "public", role, peer } = s.directory.info(name);
    const room = s.rooms.get(name);
    const active = joined && name === s.active;
    const classes = [active ? "active" : "", joined ? "" : "unjoined", role === "invited" ? "invited" : ""];
    const showRole = role && visibility !== "direct"; // both users of a direct room are simply members
    const label = s.directory.label(name);
    return h(
      "li",
      {
        class: classes.filter(Boolean).join(" "),
        "data-testid": `room-item-${name}`,
        "data-visibility": visibility,
        "data-role": role,
        "data-peer": peer,
      },
      h(
        "button",
        {
          type: "button",
          class: "tab",
          "data-testid": joined ? `room-tab-${name}` : `room-open-${name}`,
          "aria-current": active ? "true" : undefined,
          title: joined ? label : `Join ${label}`,
          onclick: joined ? () => this.actions.activate(name) : () => this.actions.joinRoom(name),
        },
        kindIcon(visibility),
        h("span", { class: "name" }, visibility === "direct" ? (peer ?? name) : name),
        showRole ? h("span", { class: `role role-${role}`, "data-testid": `room-role-${name}` }, role) : null,
        room?.unread ? h("span", { class: "badge", "data-testid": `room-unread-${name}` }, String(room.unread)) : null,
      ),
      joined
        ? h(
            "button",
            {
              type: "button",
              class: "leave",
              title: `Leave ${label}`,
              "aria-label": `Leave ${name}`,
              "data-testid": `room-leave-${name}`,
              onclick: () => this.actions.leaveRoom(name),
            },
            "×",
          )
        : null,
    );
  }

  /**
   * The rooms this tab is in, then the rooms the user holds a role in (invitations,
   * memberships, direct conversations) but has not joined here, then public rooms to browse.
   */
  renderRooms() {
    const s = this.session;
    const others = [...s.directory.values()].filter((entry) => !s.rooms.has(entry.room));
    const mine = others.filter((entry) => entry.role || entry.visibility === "direct");
    const publicRooms = others
      .filter((entry) => !entry.role && entry.visibility === "public")
      .sort((a, b) => (a.room < b.room ? -1 : 1));
    ui.rooms.replaceChildren(
      ...[...s.rooms.keys()].map((name) => this.sidebarItem(name, true)),
      ...mine.map((entry) => this.sidebarItem(entry.room, false)),
    );
    ui.publicRooms.replaceChildren(...publicRooms.map((entry) => this.sidebarItem(entry.room, false)));
    ui.publicCount.textContent = publicRooms.length ? String(publicRooms.length) : "";
    ui.publicSection.hidden = publicRooms.length === 0;
  }

  /** Invitations to act on and removals to explain, above the messages. */
  renderNotices() {
    const items = [];
    for (const [name, invitation] of this.session.invitations) {
      const direct = invitation.visibility === "direct";
      const dismiss = () => this.actions.dismissInvitation(name);
      const join = () => {
        dismiss();
        this.actions.joinRoom(name);
      };
      const text = direct
        ? `${invitation.by} started a direct conversation with you`
        : `${invitation.by} invited you to the ${invitation.visibility} room ${name}`;
      items.push(
        h(
          "li",
          { class: "notice invitation", "data-testid": `invitation-${name}` },
          h("span", { class: "text" }, text),
          h("button", { type: "button", "data-testid": `invitation-join-${name}`, onclick: join }, direct ? "Open" : "Join"),
          h("button", { type: "button", class: "link", "data-testid": `invitation-dismiss-${name}`, onclick: dismiss }, "Dismiss"),
        ),
      );
    }
    for (const [name, removal] of this.session.removals) {
      const banned = removal.reason === "banned";
      const text =
        `You were ${banned ? "banned from" : "removed from"} ${removal.label}` +
        `${removal.by ? ` by ${removal.by}` : ""}${banned ? "." : " (kicked)."}`;
      const dismiss = () => this.actions.dismissRemoval(name);
      items.push(
        h(
          "li",
          { class: "notice removal", "data-testid": `removed-${name}`, "data-reason": removal.reason },
          h("span", { class: "text" }, text),
          h("button", { type: "button", class: "link", "data-testid": `removed-dismiss-${name}`, onclick: dismiss }, "Dismiss"),
        ),
      );
    }
    ui.notices.replaceChildren(...items);
  }

  /** A user in the people panel, with "message" (direct) and, when allowed, "invite" buttons. */
  personItem(user, testId, { canInvite }) {
    const s = this.session;
    const self = user === s.me;
    const invited = s.sentInvites.get(s.active)?.has(user);
    const actions = self
      ? null
      : h(
          "span",
          { class: "acts" },
          canInvite && !invited
            ? h("button", {
                type: "button",
                class: "act invite",
                title: `Invite ${user} to ${s.active}`,
                "aria-label": `Invite ${user}`,
                "data-testid": `invite-${user}`,
                onclick: () => this.actions.invite(user),
              })
            : null,
          canInvite && invited
            ? h("span", { class: "act invited", title: `${user} is invited`, "data-testid": `invited-${user}` })
            : null,
          h("button", {
            type: "button",
            class: "act dm",
            title: `Direct message to ${user}`,
            "aria-label": `Message ${user}`,
            "data-testid": `dm-${user}`,
            onclick: () => this.actions.openDirect(user),
          }),
        );
    // Button labels come from CSS (::before), so a row's text is exactly the user's name.
    return h("li", { class: self ? "self" : "", "data-testid": testId }, h("span", { class: "who" }, user), actions);
  }

  /**
   * Who is online in the active room, then who is online in the user's other rooms: those are the
   * people one can invite to the active private room (owner or admin) or write to directly.
   */
  renderPresence() {
    const s = this.session;
    const room = s.activeRoom;
    const here = room ? [...room.presence].sort() : [];
    const { visibility, role } = room ? s.directory.info(room.name) : {};
    const canInvite = visibility === "private" && MODERATOR_ROLES.has(role);
    ui.presence.replaceChildren(...here.map((user) => this.personItem(user, `presence-${user}`, { canInvite: false })));
    ui.presenceCount.textContent = room ? `${room.presenceCount} online` : "";
    ui.presenceMore.hidden = !room?.presenceCursor;
    ui.presenceRefresh.hidden = room?.presenceMode !== "on_demand";
    const elsewhere = new Set();
    for (const other of s.rooms.values()) {
      if (other === room) continue;
      for (const user of other.presence) if (user !== s.me && !room?.presence.has(user)) elsewhere.add(user);
    }
    ui.elsewhere.replaceChildren(
      ...[...elsewhere].sort().map((user) => this.personItem(user, `elsewhere-${user}`, { canInvite })),
    );
    ui.elsewhereTitle.hidden = elsewhere.size === 0;
  }
}
