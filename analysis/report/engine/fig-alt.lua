-- The offline engine's writer side of figure alt text (Quarto does the same in its own filters):
-- an image's `fig-alt` attribute becomes the HTML `alt` attribute, and in Typst the image is
-- written as `#image(src, width: …, alt: "…")`, since pandoc's Typst writer drops alt text.
-- Runs after the book's filters (reports/fig-alt.lua sets `fig-alt` from a cell's computed text).

local function typst_string(s)
  return '"' .. s:gsub('\\', '\\\\'):gsub('"', '\\"') .. '"'
end

function Image(img)
  local alt = img.attributes["fig-alt"]
  if alt == nil or alt == "" then
    return nil
  end
  img.attributes["fig-alt"] = nil
  if FORMAT == "typst" then
    local args = typst_string(img.src)
    if img.attributes["width"] then
      args = args .. ", width: " .. img.attributes["width"]
    end
    return pandoc.RawInline("typst", "#image(" .. args .. ", alt: " .. typst_string(alt) .. ")")
  end
  img.attributes["alt"] = alt
  return img
end
