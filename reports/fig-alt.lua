-- The alternative text of computed figures, for both report engines (Quarto: `filters:` in
-- _quarto.yml, at pre-ast; the offline engine applies the same list).
--
-- A figure cell (output: asis) prints, right after its figure, an empty block
--   ::: {.fig-alt alt="…"}
--   :::
-- (analysis/report/alt_text.py: shown, alt_block). This filter moves that text onto the images
-- of the block just before it as their `fig-alt` attribute, which Quarto writes as the HTML
-- `alt` and as Typst's image(alt: …), and removes the block. A `.fig-alt` block with no image
-- before it is an error.

local function attach(blocks)
  local out = pandoc.List()
  for _, block in ipairs(blocks) do
    if block.t == "Div" and block.classes:includes("fig-alt") then
      local alt = block.attributes["alt"] or ""
      local found = false
      local prev = out[#out]
      if prev ~= nil then
        out[#out] = prev:walk({
          Image = function(img)
            found = true
            img.attributes["fig-alt"] = alt
            return img
          end,
        })
      end
      if not found then
        error("fig-alt.lua: a .fig-alt block (alt=\"" .. alt .. "\") follows no image")
      end
    else
      if block.t == "Div" then
        block.content = attach(block.content)
      end
      out:insert(block)
    end
  end
  return out
end

function Pandoc(doc)
  doc.blocks = attach(doc.blocks)
  return doc
end
